"""transferkit.evaluation.metrics against scikit-learn as the oracle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from transferkit.core.errors import UserError
from transferkit.evaluation import (
    average_ranks,
    classification_metrics,
    confusion_matrix,
    metrics_from_confusion,
    roc_auc_ovr,
)

TOL = 1e-12


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _case(seed: int, n: int, k: int, *, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels and informative probabilities; ``ties`` rounds them to few distinct values."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    probs = _softmax(logits)
    if ties:
        probs = np.round(probs, 1)
    return y, probs


def _sk_auc(y: np.ndarray, probs: np.ndarray) -> float:
    """Oracle AUC: binary on P(class 1); multiclass mean OvR over classes present in y."""
    k = probs.shape[1]
    if k == 2:
        return skm.roc_auc_score(y, probs[:, 1])
    present = [c for c in range(k) if 0 < (y == c).sum() < y.size]
    return float(np.mean([skm.roc_auc_score(y == c, probs[:, c]) for c in present]))


def _assert_matches_sklearn(y: np.ndarray, probs: np.ndarray) -> dict:
    k = probs.shape[1]
    labels = [f"c{i}" for i in range(k)]
    pred = probs.argmax(axis=1)
    out = classification_metrics(y, probs, labels)
    every = list(range(k))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=every, zero_division=0)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert out["macro_precision"] == pytest.approx(p.mean(), abs=TOL)
    assert out["macro_recall"] == pytest.approx(r.mean(), abs=TOL)
    macro = skm.f1_score(y, pred, labels=every, average="macro", zero_division=0)
    weighted = skm.f1_score(y, pred, labels=every, average="weighted", zero_division=0)
    assert out["macro_f1"] == pytest.approx(macro, abs=TOL)
    assert out["weighted_f1"] == pytest.approx(weighted, abs=TOL)
    for i, name in enumerate(labels):
        row = out["per_class"][name]
        assert [row["precision"], row["recall"], row["f1"]] == pytest.approx([p[i], r[i], f[i]], abs=TOL)
        assert row["support"] == s[i]
    assert out["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=every).tolist()
    assert out["roc_auc"] == pytest.approx(_sk_auc(y, probs), abs=TOL)
    assert out["num_examples"] == y.size
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("k", [2, 5])
@pytest.mark.parametrize("ties", [False, True])
def test_matches_sklearn_random(seed: int, k: int, ties: bool) -> None:
    y, probs = _case(seed, 300, k, ties=ties)
    _assert_matches_sklearn(y, probs)


def test_binary_auc_matches_sklearn_directly_with_heavy_ties() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, size=500)
    p1 = rng.integers(0, 4, size=500) / 3.0  # only four distinct scores
    probs = np.stack([1.0 - p1, p1], axis=1)
    out = classification_metrics(y, probs, ["neg", "pos"])
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1), abs=TOL)


def test_multiclass_auc_matches_sklearn_ovr_macro() -> None:
    for seed in range(5):
        y, probs = _case(seed, 400, 5, ties=seed % 2 == 1)
        probs = probs / probs.sum(axis=1, keepdims=True)  # sklearn requires rows summing to 1
        expected = skm.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=range(5))
        assert classification_metrics(y, probs, list("abcde"))["roc_auc"] == pytest.approx(expected, abs=TOL)


def test_class_never_predicted_gives_zero_division_zero() -> None:
    y, probs = _case(11, 200, 5)
    probs[:, 3] = 0.0  # class 3 is never the argmax
    out = _assert_matches_sklearn(y, probs)
    assert out["per_class"]["c3"]["precision"] == 0.0
    assert out["per_class"]["c3"]["f1"] == 0.0
    assert out["per_class"]["c3"]["recall"] == 0.0
    assert out["per_class"]["c3"]["support"] > 0


def test_class_absent_from_truth_is_skipped_in_auc() -> None:
    y, probs = _case(5, 300, 5)
    keep = y != 2
    y, probs = y[keep], probs[keep]
    out = _assert_matches_sklearn(y, probs)
    assert out["per_class"]["c2"]["support"] == 0
    assert out["per_class"]["c2"]["recall"] == 0.0


def test_auc_none_when_single_class() -> None:
    probs = _softmax(np.random.default_rng(0).normal(size=(20, 3)))
    out = classification_metrics(np.ones(20, dtype=int), probs, ["a", "b", "c"])
    assert out["roc_auc"] is None
    binary = classification_metrics(np.zeros(20, dtype=int), probs[:, :2], ["a", "b"])
    assert binary["roc_auc"] is None


def test_output_is_json_serialisable_python_types() -> None:
    y, probs = _case(3, 50, 3)
    out = classification_metrics(y, probs, ["x", "y", "z"])
    assert json.loads(json.dumps(out)) == out
    assert type(out["accuracy"]) is float and type(out["num_examples"]) is int
    assert all(type(v) is int for row in out["confusion_matrix"] for v in row)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 4, 1000), rng.integers(0, 4, 1000)
    cm = confusion_matrix(y, p, 4)
    assert cm.shape == (4, 4) and cm.dtype == np.int64
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, p, labels=range(4)))


def test_confusion_matrix_keeps_unseen_classes() -> None:
    cm = confusion_matrix([0, 0, 1], [0, 1, 1], 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [0, 0, 0]])


def test_metrics_from_confusion_stacked_equals_one_by_one() -> None:
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 20, size=(6, 4, 4))
    stack[2] = 0  # an all-zero matrix: everything zero-divides to 0
    batched = metrics_from_confusion(stack)
    for i in range(6):
        single = metrics_from_confusion(stack[i])
        for name, value in single.items():
            np.testing.assert_allclose(batched[name][i], value, rtol=0, atol=0)
    assert batched["accuracy"][2] == 0.0 and batched["macro_f1"][2] == 0.0


def test_average_ranks_matches_scipy_rankdata() -> None:
    from scipy.stats import rankdata

    scores = np.random.default_rng(0).integers(0, 5, size=(40, 3)).astype(float)
    np.testing.assert_array_equal(average_ranks(scores), rankdata(scores, axis=0))


def test_roc_auc_ovr_nan_for_undefined_classes() -> None:
    auc = roc_auc_ovr(np.array([0, 0, 1, 1]), np.array([[0.9, 0.1, 0], [0.6, 0.4, 0], [0.3, 0.7, 0], [0.5, 0.5, 0]]))
    assert auc[0] == pytest.approx(1.0) and auc[1] == pytest.approx(1.0) and np.isnan(auc[2])


@pytest.mark.parametrize(
    ("y", "probs", "labels", "message"),
    [
        ([0, 1], np.full((2, 3), 1 / 3), ["a", "b"], "shape"),
        ([0, 3], np.full((2, 2), 0.5), ["a", "b"], "outside"),
        ([0, -1], np.full((2, 2), 0.5), ["a", "b"], "outside"),
        ([0.0, 1.0], np.full((2, 2), 0.5), ["a", "b"], "integer"),
        ([0, 1, 1], np.full((2, 2), 0.5), ["a", "b"], "examples"),
        ([], np.zeros((0, 2)), ["a", "b"], "no examples"),
        ([0, 1], np.array([[np.nan, 1.0], [0.5, 0.5]]), ["a", "b"], "NaN"),
        ([0, 1], np.full((2, 2), 0.5), ["a", "a"], "unique"),
        ([0, 0], np.full((2, 1), 1.0), ["a"], "at least 2"),
    ],
)
def test_bad_inputs_raise_user_error(y: list, probs: np.ndarray, labels: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        classification_metrics(np.asarray(y), probs, labels)


def test_confusion_matrix_rejects_length_mismatch() -> None:
    with pytest.raises(UserError, match="differ in length"):
        confusion_matrix([0, 1], [0], 2)
