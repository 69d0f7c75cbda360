"""Which metrics a results directory reports: the task's own, stored with every finished cell.

Each task declares ``report_metrics`` (the first is its primary metric).  The grid runner
stores them with each finished cell as ``metrics["task_info"]`` (:meth:`TaskInfo.to_dict`),
so a report knows its task without importing torch or the task classes.

>>> info = TaskInfo("question_answering", ("f1", "exact_match"), "training questions")
>>> choose_metric(info, None), choose_metric(info, "exact_match")
('f1', 'exact_match')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from transferkit.core.errors import UserError, closest
from transferkit.core.results import Cell

__all__ = ["TaskInfo", "choose_metric", "metric_digits", "metric_text", "read_task", "task_name"]

INFO_KEY = "task_info"
"""Key of the task record in a stored cell's ``metrics``."""


@dataclass(frozen=True)
class TaskInfo:
    """A results directory's task: its name, report metrics (primary first) and what a budget counts."""

    name: str
    metrics: tuple[str, ...]
    budget_unit: str = "training examples"

    @property
    def primary(self) -> str:
        return self.metrics[0]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "report_metrics": list(self.metrics), "budget_unit": self.budget_unit}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TaskInfo:
        return cls(str(raw["name"]), tuple(str(m) for m in raw["report_metrics"]),
                   str(raw.get("budget_unit") or "training examples"))


def task_name(config: dict[str, Any] | None) -> str:
    """The task a stored run config names (``classification`` when it names none)."""
    task = (config or {}).get("task") or "classification"
    return str(task.get("name") or "classification") if isinstance(task, dict) else str(task)


def read_task(cells: Sequence[Cell], source: str = "results") -> TaskInfo:
    """The one task of ``cells``: the record the grid stored with its finished cells.

    Raises :class:`UserError` when the cells mix tasks, or when no cell carries a record (none finished).
    """
    names = list(dict.fromkeys(task_name(c.config) for c in cells))
    if len(names) > 1:
        raise UserError(f"{source} mixes tasks ({', '.join(names)}); a report covers one task: "
                        "run each task's grid into its own output directory")
    for cell in cells:
        stored = (cell.metrics or {}).get(INFO_KEY)
        if isinstance(stored, dict) and stored.get("report_metrics"):
            return TaskInfo.from_dict(stored)
    raise UserError(f"{source}: no done cells (none records its task's metrics); run `transferkit grid` to finish cells")


def choose_metric(info: TaskInfo, metric: str | None) -> str:
    """``metric`` if it is one of the task's report metrics, the primary one when None; else a UserError."""
    if metric is None:
        return info.primary
    if metric not in info.metrics:
        raise UserError(f"unknown metric '{metric}' for task {info.name}{closest(metric, info.metrics)}; "
                        f"available: {', '.join(info.metrics)}")
    return metric


def metric_digits(values: Iterable[float | None]) -> int:
    """Decimals to show: 3 for metrics in [0, 1], 2 for percent-scale ones (QA EM/F1, ROUGE) above 1."""
    return 2 if any(v is not None and abs(v) > 1 for v in values) else 3


def metric_text(name: str, value: float | None) -> str:
    """``"f1 0.812"``, ``"rougeL 14.3"``: one value for a progress line (1 decimal above 1, else 3)."""
    if value is None:
        return f"{name} n/a"
    return f"{name} {value:.1f}" if abs(value) > 1 else f"{name} {value:.3f}"
