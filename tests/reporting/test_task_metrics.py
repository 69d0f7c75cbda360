"""Which metrics a report uses: the stored task record, the classification fallback, --metric checks."""

from __future__ import annotations

import pytest

from tests.helpers import one_line_error
from transferkit.core.results import Cell
from transferkit.reporting.task_metrics import TaskInfo, choose_metric, metric_text, read_task

NER = TaskInfo("token_classification", ("f1", "precision", "recall"), "training sentences")


def cell(task: str | None, info: TaskInfo | None = None, status: str = "done") -> Cell:
    config = {"strategy": {"name": "finetune"}} | ({"task": {"name": task}} if task else {})
    metrics = {"eval": {"f1": 0.5}} | ({"task_info": info.to_dict()} if info else {})
    return Cell("id", {"strategy": "finetune"}, config, status=status, metrics=metrics)


def test_stored_record_round_trips_and_wins() -> None:
    assert TaskInfo.from_dict(NER.to_dict()) == NER
    assert read_task([cell("token_classification", status="failed"), cell("token_classification", NER)]) == NER


def test_mixed_tasks_and_unrecorded_tasks_are_one_line_errors() -> None:
    one_line_error(lambda: read_task([cell("classification"), cell("token_classification", NER)], "runs/x"),
                   "runs/x mixes tasks (classification, token_classification)")
    one_line_error(lambda: read_task([cell("question_answering")]), "no done cells", "records its task's metrics")


def test_choose_metric() -> None:
    assert choose_metric(NER, None) == "f1" and choose_metric(NER, "recall") == "recall"
    one_line_error(lambda: choose_metric(NER, "precison"), "unknown metric 'precison' for task token_classification",
                   "did you mean 'precision'", "available: f1, precision, recall")


@pytest.mark.parametrize(("name", "value", "text"), [
    ("accuracy", 0.8734, "accuracy 0.873"), ("rougeL", 14.31, "rougeL 14.3"), ("f1", None, "f1 n/a"),
])
def test_metric_text(name, value, text) -> None:
    assert metric_text(name, value) == text
