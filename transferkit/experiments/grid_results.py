"""A grid's task and its results: one task per grid, its report metrics stored with every cell.

Each task declares ``report_metrics`` (first = primary).  :func:`task_info` turns that into
the :class:`~transferkit.reporting.task_metrics.TaskInfo` record the grid stores with every
finished cell, so ``transferkit report`` reads its metrics without the task classes.
:func:`result_rows` exports one row per cell with the task's metric columns: classification
keeps ``accuracy, macro_f1, roc_auc, accuracy_ci_low, accuracy_ci_high``; token classification
has ``f1, precision, recall, f1_ci_low, f1_ci_high``; question answering ``f1, exact_match, ...``.
The metric columns come from each cell's reported split (its first test set, else eval), named
in the ``split`` column ("test", "test:zh", "eval (selection split)", ...); when the cells store
more than one split, a ``<primary>[<split>]`` column per other split (``accuracy[test:zh]``,
``accuracy[eval]``) shows the primary metric there too.  When any cell stored a continual block,
``continual_acc``, ``continual_bwt`` and ``continual_fwt`` follow (fractions; None where undefined).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from transferkit.core.config import RunConfig
from transferkit.core.errors import UserError
from transferkit.core.results import Cell, ResultsStore
from transferkit.reporting.continual_panel import COLUMNS as CONTINUAL_COLUMNS
from transferkit.reporting.continual_panel import continual_block, continual_values
from transferkit.reporting.report_split import available_splits, reported_split, split_label, split_metrics
from transferkit.reporting.task_metrics import INFO_KEY, TaskInfo, metric_text, task_name
from transferkit.tasks import TASKS

COST_COLUMNS = ("train_seconds", "eval_seconds", "peak_rss_mb", "trainable_parameters", "total_parameters")


def task_info(name: str) -> TaskInfo:
    """The report record of the task registered as ``name``: its report metrics, primary first."""
    task = TASKS.get(name)
    metrics = (task.primary_metric, *(m for m in task.report_metrics if m != task.primary_metric))
    return TaskInfo(task.name, metrics, task.budget_unit)


def check_one_task(cells: Sequence[tuple[dict[str, Any], RunConfig]], source: str) -> None:
    """A grid runs one task (its report compares one set of metrics): fail before training otherwise."""
    names = list(dict.fromkeys(config.task.name for _, config in cells))
    if len(names) > 1:
        raise UserError(f"{source}: the cells run different tasks ({', '.join(names)}); a grid runs one task, "
                        "so write one grid spec per task")


def with_task_info(metrics: dict[str, Any], config: RunConfig) -> dict[str, Any]:
    """A run's metrics plus the task record reports read (``metrics["task_info"]``)."""
    return {**metrics, INFO_KEY: task_info(config.task.name).to_dict()}


def primary_text(metrics: dict[str, Any], config: RunConfig) -> str:
    """The run's primary metric on its reported split, for the grid's progress line ("f1 0.812 on test")."""
    primary = task_info(config.task.name).primary
    split = reported_split(metrics)
    value = (split_metrics(metrics, split) or {}).get(primary)
    return f"{metric_text(primary, value)} on {split_label(split, metrics.get('selected_on'))}"


def _metric_columns(cells: Sequence[Cell]) -> list[str]:
    """Each task's report metrics, then the 95% CI of its primary metric (tasks in first-seen order)."""
    columns: list[str] = []
    for name in dict.fromkeys(task_name(c.config) for c in cells):
        info = task_info(name)
        columns += [c for c in (*info.metrics, f"{info.primary}_ci_low", f"{info.primary}_ci_high")
                    if c not in columns]
    return columns


def _split_columns(cells: Sequence[Cell]) -> list[tuple[str, str]]:
    """``(column, split)`` of the primary metric on each split but the first (``accuracy[test:zh]``, ``accuracy[eval]``)."""
    primaries = list(dict.fromkeys(task_info(task_name(c.config)).primary for c in cells))
    return [(f"{primary}[{split}]", split) for split in available_splits(cells)[1:] for primary in primaries]


def _metric_values(cell: Cell, columns: Sequence[str], extra: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The cell's split label, ``selected_on``, metric columns on its reported split and the extra split columns."""
    metrics = cell.metrics or {}
    split = reported_split(metrics)
    reported = split_metrics(metrics, split) or {}
    values: dict[str, Any] = {c: reported.get(c) for c in columns if not c.endswith(("_ci_low", "_ci_high"))}
    primary = task_info(task_name(cell.config)).primary
    interval = (reported.get("ci95") or {}).get(primary) or [None, None]
    values[f"{primary}_ci_low"], values[f"{primary}_ci_high"] = interval[0], interval[1]
    row = {"split": split_label(split, metrics.get("selected_on")) if reported else None,
           "selected_on": metrics.get("selected_on")}
    row |= {c: values.get(c) for c in columns}
    return row | {column: (split_metrics(metrics, other) or {}).get(column.split("[", 1)[0]) for column, other in extra}


def result_rows(output_dir: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, one row per stored cell) for export: cell id, axis values, task, status, metrics and costs."""
    if not os.path.isdir(output_dir):
        raise UserError(f"results directory not found: {output_dir}")
    cells = ResultsStore(output_dir, create=False).cells()
    if not cells:
        raise UserError(f"no cells in {output_dir}; run `transferkit grid` first")
    axis_keys: list[str] = []
    for cell in cells:
        axis_keys += [k for k in cell.axes if k not in axis_keys]
    metric_columns = _metric_columns(cells)
    extra = _split_columns(cells)
    continual = any(continual_block(cell.metrics) for cell in cells)
    rows = [{"cell_id": cell.cell_id, **{k: cell.axes.get(k) for k in axis_keys}, "task": task_name(cell.config),
             "status": cell.status, **_metric_values(cell, metric_columns, extra),
             **(continual_values(cell.metrics) if continual else {}),
             **{k: getattr(cell, k) for k in COST_COLUMNS}, "error": cell.error} for cell in cells]
    columns = ["cell_id", *axis_keys, "task", "status", "split", "selected_on", *metric_columns,
               *(column for column, _ in extra), *(CONTINUAL_COLUMNS if continual else ()), *COST_COLUMNS, "error"]
    return columns, rows
