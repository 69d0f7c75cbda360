"""Continual learning: the accuracy matrix of a run over stages and its three summaries.

A continual run trains on stages 1..T in order; after stage t the model is evaluated on every
stage's test set, giving the accuracy matrix ``R`` (T×T, ``R[t][i]`` = accuracy on stage i's test
set after training stage t).  ``b_i`` is the untrained model's accuracy on stage i's test set,
measured before stage 1.  Following Lopez-Paz & Ranzato 2017 ("Gradient Episodic Memory for
Continual Learning", §4), with 1-based indices:

* ``ACC = 1/T Σ_i R[T,i]`` — average accuracy after the last stage;
* ``BWT = 1/(T−1) Σ_{i<T} (R[T,i] − R[i,i])`` — backward transfer: how learning later stages changed
  earlier ones (negative = forgetting);
* ``FWT = 1/(T−1) Σ_{i>1} (R[i−1,i] − b_i)`` — forward transfer: how earlier stages help a stage
  before it is trained on.  Only defined in the ``domain`` setting: in the ``class`` setting the
  model predicts only among the classes seen so far, so ``R[i−1,i]`` is zero by construction; in the
  ``task`` setting stage i's head (its rows of the output layer, or its own adapter) is untrained
  before stage i, so ``R[i−1,i]`` is that of random weights (FWT is None).

In the ``task`` setting (task-incremental: a head per stage, the stage named at prediction),
``R[t,i]`` is the accuracy of the argmax over stage i's own classes, ``allowed`` below.

A method that trains once on everything (``joint``, the upper bound) has only its last row: the
earlier rows are None, so BWT and FWT are None and ACC comes from the last row.

>>> summary = continual_summary(["a", "b"], [[0.9, 0.6], [0.7, 0.8]], [0.5, 0.5], "domain")
>>> round(summary["acc"], 3), round(summary["bwt"], 3), round(summary["fwt"], 3)
(0.75, -0.2, 0.1)
>>> import numpy as np
>>> seen_accuracy(np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]]), np.array([1, 0]), allowed=[0, 1])
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SETTINGS", "continual_summary", "seen_accuracy"]

SETTINGS = ("domain", "class", "task")
"""``domain``: every stage has the same labels (new inputs); ``class``: each stage brings new classes, predicted
among all classes seen; ``task``: each stage brings its own classes, predicted with the stage named."""


def seen_accuracy(probabilities: np.ndarray, labels: np.ndarray, allowed: Sequence[int] | None = None) -> float:
    """Accuracy of the argmax over the ``allowed`` columns only (all columns when None).

    Shapes: ``probabilities`` (n, K) (scores or logits work too), ``labels`` (n,) of original
    column ids.  Predictions are mapped back to original column ids, so a label outside
    ``allowed`` is always counted wrong.  Returns 0.0 for no examples.
    """
    scores = np.asarray(probabilities)
    if scores.ndim != 2:
        raise ValueError(f"probabilities must be (examples, classes), got shape {scores.shape}")
    labels = np.asarray(labels)
    if len(labels) != len(scores):
        raise ValueError(f"{len(scores)} rows of probabilities but {len(labels)} labels")
    if len(labels) == 0:
        return 0.0
    columns = np.arange(scores.shape[1]) if allowed is None else np.asarray(list(allowed), dtype=int)
    if columns.size == 0:
        raise ValueError("allowed names no column: pass None for all columns")
    predictions = columns[np.argmax(scores[:, columns], axis=1)]  # (n,) original column ids
    return float(np.mean(predictions == labels))


def _rows(matrix: Sequence[Sequence[float | None] | None], stages: int) -> list[list[float | None] | None]:
    """The matrix as T lists (None for rows not evaluated), after checking it is T×T."""
    if len(matrix) != stages:
        raise ValueError(f"{stages} stage names but {len(matrix)} matrix rows; pass one row per stage")
    rows: list[list[float | None] | None] = []
    for t, row in enumerate(matrix):
        if row is None:
            rows.append(None)
            continue
        if len(row) != stages:
            raise ValueError(f"matrix row {t} has {len(row)} entries, expected {stages} (the matrix must be T×T)")
        rows.append([None if v is None else float(v) for v in row])
    if rows[-1] is None or any(v is None for v in rows[-1]):
        raise ValueError("the last matrix row (after the last stage) must be fully evaluated")
    return rows


def _mean(values: list[float | None]) -> float | None:
    """The mean, or None when there is nothing to average or a term is missing."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present and len(present) == len(values) else None


def _earlier(rows: list[list[float | None] | None]) -> list[list[float | None]] | None:
    """Rows 1..T−1, or None when any of them was not evaluated (BWT and FWT need them all)."""
    earlier = [row for row in rows[:-1] if row is not None]
    return earlier if len(earlier) == len(rows) - 1 else None


def _backward(rows: list[list[float | None] | None]) -> float | None:
    """``mean_{i<T} (R[T,i] − R[i,i])``; 0-based below, so row ``i`` is the one after stage i+1."""
    earlier, last = _earlier(rows), rows[-1]
    if earlier is None or last is None:
        return None
    return _mean([None if row[i] is None or last[i] is None else last[i] - row[i]
                  for i, row in enumerate(earlier)])


def _forward(rows: list[list[float | None] | None], baseline: list[float] | None) -> float | None:
    """``mean_{i>1} (R[i−1,i] − b_i)``; 0-based below: row ``i − 1`` on column ``i``, for i = 1..T−1."""
    earlier = _earlier(rows)
    if earlier is None or baseline is None:
        return None
    ahead = [row[i + 1] for i, row in enumerate(earlier)]  # R[i−1,i] for i = 2..T (1-based)
    return _mean([None if r is None else r - baseline[i] for i, r in enumerate(ahead, start=1)])


def continual_summary(names: Sequence[str], matrix: Sequence[Sequence[float | None] | None],
                      baseline: Sequence[float] | None, setting: str) -> dict[str, Any]:
    """ACC, BWT and FWT of an accuracy matrix, with the matrix itself, as a JSON-ready dict.

    Args:
        names: the T stage names, in training order.
        matrix: T rows, ``matrix[t][i]`` = accuracy in [0, 1] on stage i's test set after training stage t;
            a row is None when the method was not evaluated after that stage (``joint``).
        baseline: ``b_i``, the untrained model's accuracy on each stage's test set, or None.
        setting: ``"domain"``, ``"class"`` or ``"task"`` (FWT is None but in the domain setting).

    Returns:
        ``{"setting", "names", "matrix", "baseline", "acc", "bwt", "fwt"}``; BWT and FWT are None
        with a single stage, with missing rows, and FWT also without a baseline.

    Raises:
        ValueError: for an unknown setting, a matrix that is not T×T, a baseline of another length,
            or an unevaluated last row.
    """
    if setting not in SETTINGS:
        raise ValueError(f"unknown continual setting '{setting}'; use one of {', '.join(SETTINGS)}")
    rows = _rows(matrix, len(names))
    base = None if baseline is None else [float(v) for v in baseline]
    if base is not None and len(base) != len(names):
        raise ValueError(f"{len(names)} stage names but a baseline of {len(base)} values")
    return {"setting": setting, "names": [str(n) for n in names], "matrix": rows, "baseline": base,
            "acc": float(np.mean(rows[-1])), "bwt": _backward(rows),
            "fwt": _forward(rows, base) if setting == "domain" else None}
