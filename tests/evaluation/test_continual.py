"""Continual-learning evaluation: ACC, BWT and FWT of hand-computed matrices, and accuracy over seen classes."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from transferkit.evaluation import continual
from transferkit.evaluation.continual import continual_summary, seen_accuracy

NAMES = ["books", "dvd", "kitchen"]
MATRIX = [[0.80, 0.10, 0.20],   # after books
          [0.60, 0.90, 0.30],   # after dvd
          [0.50, 0.70, 0.85]]   # after kitchen
BASELINE = [0.10, 0.20, 0.25]


def test_docstring_examples_run() -> None:
    result = doctest.testmod(continual)
    assert result.attempted > 0 and result.failed == 0


def test_summary_of_a_3x3_matrix_by_hand() -> None:
    summary = continual_summary(NAMES, MATRIX, BASELINE, "domain")
    assert summary["acc"] == pytest.approx((0.50 + 0.70 + 0.85) / 3)  # last row
    assert summary["bwt"] == pytest.approx(((0.50 - 0.80) + (0.70 - 0.90)) / 2)  # -0.25: forgetting
    assert summary["fwt"] == pytest.approx(((0.10 - 0.20) + (0.30 - 0.25)) / 2)  # R[1,2] − b_2, R[2,3] − b_3
    assert summary["setting"] == "domain" and summary["names"] == NAMES
    assert summary["matrix"] == MATRIX and summary["baseline"] == BASELINE
    assert summary["acc"] == (0.50 + 0.70 + 0.85) / 3  # full precision, not rounded


def test_class_setting_has_no_forward_transfer() -> None:
    summary = continual_summary(NAMES, MATRIX, BASELINE, "class")
    assert summary["fwt"] is None
    assert summary["bwt"] == pytest.approx(-0.25)


def test_task_setting_has_backward_but_no_forward_transfer() -> None:
    summary = continual_summary(NAMES, MATRIX, BASELINE, "task")
    assert summary["setting"] == "task" and summary["fwt"] is None
    assert summary["bwt"] == pytest.approx(-0.25)


def test_joint_style_matrix_has_only_its_last_row() -> None:
    summary = continual_summary(NAMES, [None, None, [0.9, 0.8, 0.7]], BASELINE, "domain")
    assert summary["acc"] == pytest.approx(0.8)
    assert summary["bwt"] is None and summary["fwt"] is None
    assert summary["matrix"] == [None, None, [0.9, 0.8, 0.7]]


def test_no_baseline_or_one_stage_leaves_fwt_and_bwt_out() -> None:
    assert continual_summary(NAMES, MATRIX, None, "domain")["fwt"] is None
    single = continual_summary(["only"], [[0.6]], [0.5], "domain")
    assert single["acc"] == pytest.approx(0.6) and single["bwt"] is None and single["fwt"] is None


@pytest.mark.parametrize(("names", "matrix", "baseline", "setting", "message"), [
    (NAMES, MATRIX[:2], BASELINE, "domain", "3 stage names but 2 matrix rows"),
    (NAMES, [MATRIX[0], MATRIX[1][:2], MATRIX[2]], BASELINE, "domain", "must be T×T"),
    (NAMES, MATRIX, BASELINE[:2], "domain", "baseline of 2"),
    (NAMES, [MATRIX[0], MATRIX[1], None], BASELINE, "domain", "last matrix row"),
    (NAMES, MATRIX, BASELINE, "tasks", "unknown continual setting 'tasks'"),
])
def test_bad_shapes_are_value_errors(names, matrix, baseline, setting, message) -> None:
    with pytest.raises(ValueError, match=message):
        continual_summary(names, matrix, baseline, setting)


def test_seen_accuracy_takes_the_argmax_over_the_allowed_columns_only() -> None:
    probabilities = np.array([[0.6, 0.3, 0.1],
                              [0.7, 0.1, 0.2],
                              [0.5, 0.2, 0.3]])
    labels = np.array([1, 2, 2])
    assert seen_accuracy(probabilities, labels) == 0.0  # the unmasked argmax is always class 0
    assert seen_accuracy(probabilities, labels, allowed=[1, 2]) == 1.0
    assert seen_accuracy(probabilities, labels, allowed=[2, 1]) == 1.0  # predictions map back to column ids
    assert seen_accuracy(probabilities, np.array([0, 0, 2]), allowed=[0, 2]) == pytest.approx(2 / 3)
    assert seen_accuracy(probabilities, labels, allowed=[0]) == 0.0  # labels outside allowed are always wrong
    assert seen_accuracy(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 0.0
    with pytest.raises(ValueError, match="labels"):
        seen_accuracy(probabilities, labels[:2])
