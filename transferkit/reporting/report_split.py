"""Which split a stored run's figures come from: its test set(s) when it has any, else eval.

A run's ``metrics.json`` holds ``metrics["eval"]`` (the eval split), ``metrics["test"]`` (only
when ``data.test`` is set: test-set name -> metrics of the same shape) and
``metrics["selected_on"]`` (``"eval"`` when per-epoch best-checkpoint restore chose the model
on the eval split, else None).  Figures from the split the checkpoint was selected on are
optimistic, so grids, ``transferkit results``, the report and the model card compare on a test
set when a run has one, and label an eval figure ``"eval (selection split)"`` when it is one.

A split is named by an id: ``"eval"``, ``"test"`` for a single ``data.test: FILE`` (stored as
the test set ``test``) and ``"test:<name>"`` for ``data.test: {name: FILE}``.

>>> metrics = {"eval": {"accuracy": 0.9}, "test": {"en": {"accuracy": 0.8}, "zh": {"accuracy": 0.7}},
...            "selected_on": "eval"}
>>> split_ids(metrics), reported_split(metrics)
(['test:en', 'test:zh', 'eval'], 'test:en')
>>> split_label("eval", metrics["selected_on"]), split_label("test:zh", metrics["selected_on"])
('eval (selection split)', 'test:zh')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from transferkit.core.errors import UserError, closest
from transferkit.core.results import Cell

__all__ = ["EVAL", "available_splits", "choose_split", "grid_split_label", "reported_split", "split_description",
           "split_id", "split_ids", "split_label", "split_metrics", "stored_test_sets"]

EVAL = "eval"
"""Id of the eval split (the one per-epoch evaluation and best-checkpoint restore use)."""

SELECTION_NOTE = "selection split"
"""Appended to the label of the split best-checkpoint restore selected on."""


def split_id(test_name: str) -> str:
    """The id of the test set ``test_name``: ``"test"`` for a single ``data.test: FILE``, else ``"test:<name>"``."""
    return "test" if test_name == "test" else f"test:{test_name}"


def stored_test_sets(metrics: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The run's test sets as name -> metrics (empty without ``data.test``)."""
    raw = (metrics or {}).get("test")
    if not isinstance(raw, dict) or not raw:
        return {}
    return {str(name): value for name, value in raw.items()}


def split_ids(metrics: dict[str, Any] | None) -> list[str]:
    """Ids of the run's splits: its test sets in stored order, then ``"eval"`` when stored."""
    ids = [split_id(name) for name in stored_test_sets(metrics)]
    return ids + [EVAL] if isinstance((metrics or {}).get(EVAL), dict) else ids


def split_metrics(metrics: dict[str, Any] | None, split: str) -> dict[str, Any] | None:
    """The metrics dict of ``split`` (an id) in a run's metrics, or None when the run lacks it."""
    if split == EVAL:
        value = (metrics or {}).get(EVAL)
        return value if isinstance(value, dict) else None
    return {split_id(name): value for name, value in stored_test_sets(metrics).items()}.get(split)


def reported_split(metrics: dict[str, Any] | None, requested: str | None = None) -> str:
    """The split a run's figures are reported on: ``requested``, else its first test set, else ``"eval"``."""
    if requested is not None:
        return requested
    tests = stored_test_sets(metrics)
    return split_id(next(iter(tests))) if tests else EVAL


def split_label(split: str, selected_on: str | None) -> str:
    """``split``, marked ``"(selection split)"`` when best-checkpoint restore selected on it."""
    return f"{split} ({SELECTION_NOTE})" if selected_on is not None and split == selected_on else split


def _selected_on(cell: Cell) -> str | None:
    value = (cell.metrics or {}).get("selected_on")
    return str(value) if value else None


def grid_split_label(cells: Iterable[Cell], split: str) -> str:
    """The label of ``split`` over a grid: a selection split when any done run selected its checkpoint on it."""
    selected = any(_selected_on(c) == split for c in cells if c.status == "done")
    return split_label(split, split if selected else None)


def split_description(label: str) -> str:
    """One sentence saying where a table's figures come from, for a report caption."""
    if label.startswith("test"):
        return f"Figures on the test set ({label}): held out, evaluated once, never used to select a checkpoint."
    if SELECTION_NOTE in label:
        return ("Figures on the eval split, which best-checkpoint restore selected on (selection split): "
                "optimistic for the runs it selected; set data.test for unbiased figures.")
    return "Figures on the eval split (the runs have no test set)."


def available_splits(cells: Iterable[Cell]) -> list[str]:
    """Every split id stored by the done cells, test sets first (first-seen order), eval last."""
    ids: list[str] = []
    for cell in cells:
        if cell.status == "done":
            ids += [s for s in split_ids(cell.metrics) if s not in ids]
    return [s for s in ids if s != EVAL] + ([EVAL] if EVAL in ids else [])


def choose_split(cells: Sequence[Cell], requested: str | None = None) -> str:
    """The split a grid's report compares on: ``requested`` (an id or a test-set name), else the first test set.

    Without a request and without test sets this is ``"eval"``.  Raises :class:`UserError`
    for a name no done cell stored, listing the available ones.
    """
    available = available_splits(cells)
    if requested is None:
        return available[0] if available else EVAL
    for candidate in (requested, split_id(requested)):
        if candidate in available:
            return candidate
    raise UserError(f"unknown split '{requested}'{closest(requested, available)}; "
                    f"available: {', '.join(available) or 'none (no done cells)'}")
