"""The reported split: test sets before the eval split checkpoint selection used, labelled, in stats and report."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import one_line_error
from tests.reporting.fake_results import held_out_accuracy, make_cells
from transferkit.core.results import Cell
from transferkit.reporting import paired_comparison, summarize
from transferkit.reporting.plots import best_cell
from transferkit.reporting.report_split import (
    available_splits,
    choose_split,
    grid_split_label,
    reported_split,
    split_description,
    split_ids,
    split_label,
    split_metrics,
    stored_test_sets,
)
from transferkit.reporting.stats import metric_value

TWO_TESTS = {"eval": {"accuracy": 0.9}, "test": {"en": {"accuracy": 0.8}, "zh": {"accuracy": 0.7}},
             "selected_on": "eval"}


@pytest.mark.parametrize(("metrics", "ids", "reported"), [
    ({"eval": {"accuracy": 0.9}}, ["eval"], "eval"),
    ({"eval": {"accuracy": 0.9}, "test": {"test": {"accuracy": 0.8}}}, ["test", "eval"], "test"),
    (TWO_TESTS, ["test:en", "test:zh", "eval"], "test:en"),
    ({}, [], "eval"),
])
def test_split_ids_and_the_reported_split(metrics, ids, reported) -> None:
    assert split_ids(metrics) == ids
    assert reported_split(metrics) == reported
    assert reported_split(metrics, "eval") == "eval"


def test_split_metrics_reads_the_named_entry() -> None:
    assert split_metrics(TWO_TESTS, "test:zh") == {"accuracy": 0.7}
    assert split_metrics(TWO_TESTS, "eval") == {"accuracy": 0.9}
    assert split_metrics(TWO_TESTS, "test") is None and split_metrics(None, "eval") is None
    assert stored_test_sets(TWO_TESTS) == TWO_TESTS["test"] and stored_test_sets({"eval": {}}) == {}


@pytest.mark.parametrize(("split", "selected_on", "label"), [
    ("eval", "eval", "eval (selection split)"),
    ("eval", None, "eval"),
    ("test", "eval", "test"),
    ("test:zh", "eval", "test:zh"),
])
def test_split_labels(split, selected_on, label) -> None:
    assert split_label(split, selected_on) == label


def test_descriptions_say_where_figures_come_from() -> None:
    assert "held out" in split_description("test:zh")
    assert "optimistic" in split_description("eval (selection split)")
    assert "no test set" in split_description("eval")


def _cell(metrics: dict, status: str = "done") -> Cell:
    return Cell(str(id(metrics)), {"strategy": "finetune"}, {}, status=status, metrics=metrics)


def test_choose_split_for_a_grid() -> None:
    cells = [_cell(TWO_TESTS), _cell({"eval": {"accuracy": 0.5}}), _cell({"test": {"xx": {}}}, status="failed")]
    assert available_splits(cells) == ["test:en", "test:zh", "eval"]
    assert choose_split(cells) == "test:en"
    assert choose_split(cells, "zh") == choose_split(cells, "test:zh") == "test:zh"
    assert choose_split(cells, "eval") == "eval"
    assert choose_split([_cell({"eval": {}})]) == "eval"
    message = one_line_error(lambda: choose_split(cells, "fr"), "unknown split 'fr'",
                             "available: test:en, test:zh, eval")
    assert "xx" not in message  # failed cells' splits are not offered
    assert grid_split_label(cells, "eval") == "eval (selection split)"
    assert grid_split_label([_cell({"eval": {}, "selected_on": None})], "eval") == "eval"


def test_metric_value_prefers_the_test_set_over_the_selection_split() -> None:
    cell = _cell(TWO_TESTS)
    assert metric_value(cell, "accuracy") == 0.8
    assert metric_value(cell, "accuracy", "test:zh") == 0.7
    assert metric_value(cell, "accuracy", "eval") == 0.9
    assert metric_value(cell, "accuracy", "test:fr") is None


def test_summaries_and_comparisons_read_the_test_set() -> None:
    cells = make_cells(tests=("en", "zh"), selected=True)
    done = [c for c in cells if c.status == "done"]
    row = next(r for r in summarize(cells, "accuracy") if r["strategy"] == "lora" and r["data.budget"] == 32)
    members = [c for c in done if c.axes["strategy"] == "lora" and c.axes["data.budget"] == 32]
    on_eval = np.array([c.metrics["eval"]["accuracy"] for c in members])
    assert row["mean"] == pytest.approx(np.mean([held_out_accuracy(v, 0) for v in on_eval]))
    zh = next(r for r in summarize(cells, "accuracy", split="test:zh")
              if r["strategy"] == "lora" and r["data.budget"] == 32)
    assert zh["mean"] == pytest.approx(np.mean([held_out_accuracy(v, 1) for v in on_eval]))
    compared = paired_comparison(cells, "finetune", "tfidf", n_resamples=200)
    on_test = [c.metrics["test"]["en"]["accuracy"] for c in done if c.axes["strategy"] == "finetune"]
    assert compared["mean_a"] == pytest.approx(np.mean(on_test))
    best = best_cell(cells, "accuracy")
    assert best is not None
    assert best.metrics["test"]["en"]["accuracy"] == max(c.metrics["test"]["en"]["accuracy"] for c in done)
