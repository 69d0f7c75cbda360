"""Statistics over grid cells: per-group means with t intervals, paired strategy comparisons.

Seeds are replicates, every other axis (strategy, budget, model, ...) defines a group.
:func:`summarize` gives mean, standard deviation and a 95% Student t interval over the
seeds of each group; :func:`paired_comparison` pairs two strategies' runs that agree on
every other axis and tests the mean difference with a paired bootstrap interval and a
sign-flip permutation test (exact for up to 16 pairs).  Everything is vectorised numpy.
Values come from one split per cell (see :mod:`~transferkit.reporting.report_split`): the
``split`` argument, else the cell's first test set, else its eval split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from transferkit.core.results import Cell
from transferkit.evaluation.student_t import t_quantile
from transferkit.reporting.report_split import reported_split, split_metrics

__all__ = ["group_axes", "is_seed_axis", "metric_value", "paired_comparison", "sign_flip_p_value", "sort_key", "summarize", "t_interval",
           "t_quantile"]

EXACT_MAX_PAIRS = 16
"""Up to this many pairs the sign-flip test enumerates all ``2**n`` flips."""


def is_seed_axis(axis: str) -> bool:
    """True for replicate axes (``training.seed``, ``seed``, ``data.split_seed``, ...)."""
    return axis.lower().endswith("seed")


def metric_value(cell: Cell, metric: str, split: str | None = None) -> float | None:
    """The cell's finite value of ``metric`` on ``split`` (default: its reported split), else None.

    The reported split is the cell's first test set when it has one, else ``eval`` (see
    :func:`~transferkit.reporting.report_split.reported_split`).
    """
    value = (split_metrics(cell.metrics, reported_split(cell.metrics, split)) or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def sort_key(value: Any) -> tuple[int, Any]:
    """Sort numbers numerically before strings, None last (mixed-type axis values)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    return (2, "") if value is None else (1, str(value))


def group_axes(cells: Iterable[Cell]) -> list[str]:
    """The non-seed axes of ``cells``, in first-seen order."""
    axes: list[str] = []
    for cell in cells:
        axes += [a for a in cell.axes if a not in axes and not is_seed_axis(a)]
    return axes


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float, float]:
    """``(mean, std, low, high)``: sample std (ddof=1) and the Student t interval of the mean.

    With one value the std is 0 and the interval collapses to the value.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("t_interval needs at least one value")
    mean = float(x.mean())
    if x.size == 1:
        return mean, 0.0, mean, mean
    std = float(x.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, x.size - 1) * std / math.sqrt(x.size)
    return mean, std, mean - half, mean + half


def _mean_of(values: Iterable[float | int | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarize(cells: Iterable[Cell], metric: str = "accuracy", group_by: list[str] | None = None,
              split: str | None = None) -> list[dict[str, Any]]:
    """One row per group of done cells: the group's axis values, n, mean, std, ci_low, ci_high.

    ``group_by`` defaults to every non-seed axis, so seeds are the replicates.  Rows also
    carry ``train_seconds`` (mean) and ``trainable_parameters`` (mean) and are sorted by
    the group values (numbers numerically).  Values are read on ``split`` (default: each
    cell's reported split); cells without a value for ``metric`` there are skipped.
    """
    done = [c for c in cells if c.status == "done" and metric_value(c, metric, split) is not None]
    axes = list(group_by) if group_by is not None else group_axes(done)
    groups: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in done:
        groups.setdefault(tuple(cell.axes.get(a) for a in axes), []).append(cell)
    rows = []
    for key in sorted(groups, key=lambda k: tuple(sort_key(v) for v in k)):
        members = groups[key]
        mean, std, low, high = t_interval([metric_value(c, metric, split) for c in members])  # type: ignore[misc]
        rows.append({**dict(zip(axes, key, strict=True)), "metric": metric, "n": len(members), "mean": mean, "std": std,
                     "ci_low": low, "ci_high": high,
                     "train_seconds": _mean_of(c.train_seconds for c in members),
                     "trainable_parameters": _mean_of(c.trainable_parameters for c in members)})
    return rows


def _pairs(cells: Iterable[Cell], a: str, b: str, metric: str, axis: str, split: str | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Metric values (on ``split``) of ``a`` and ``b`` runs matched on every axis other than ``axis``."""
    sides: dict[str, dict[tuple[Any, ...], float]] = {a: {}, b: {}}
    for cell in cells:
        value = metric_value(cell, metric, split)
        side = cell.axes.get(axis)
        if cell.status != "done" or value is None or side not in sides:
            continue
        key = tuple(sorted(((k, repr(v)) for k, v in cell.axes.items() if k != axis)))
        sides[side][key] = value
    common = sorted(set(sides[a]) & set(sides[b]))
    return (np.array([sides[a][k] for k in common], dtype=float),
            np.array([sides[b][k] for k in common], dtype=float))


def sign_flip_p_value(diffs: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of ``mean(diffs) == 0`` by flipping the signs of the differences.

    All ``2**n`` flips are enumerated when ``n <= 16``; otherwise ``n_resamples`` random
    flips are drawn and ``(hits + 1) / (n_resamples + 1)`` is returned.
    """
    d = np.asarray(diffs, dtype=float)
    n = d.size
    observed = abs(d.mean()) - 1e-12 * max(1.0, float(np.abs(d).max(initial=0.0)))
    if n <= EXACT_MAX_PAIRS:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        flipped = np.abs(((1 - 2 * bits) * d).mean(axis=1))
        return float(np.mean(flipped >= observed))
    signs = np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=(n_resamples, n))
    hits = int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed))
    return (hits + 1) / (n_resamples + 1)


def paired_comparison(cells: Iterable[Cell], strategy_a: str, strategy_b: str, metric: str = "accuracy",
                      axis: str = "strategy", n_resamples: int = 10_000, seed: int = 0,
                      split: str | None = None) -> dict[str, Any]:
    """Compare ``strategy_a`` with ``strategy_b`` on runs that agree on every other axis.

    Values are read on ``split`` (default: each cell's reported split, see :func:`metric_value`).

    Returns ``a``, ``b``, ``metric``, ``n_pairs``, ``mean_a``, ``mean_b``, ``mean_diff``
    (a - b), ``ci_low``/``ci_high`` (95% percentile bootstrap of the mean paired
    difference, ``n_resamples`` resamples) and ``p_value`` (two-sided sign-flip test).
    With no pairs the numbers are None.
    """
    cells = list(cells)
    va, vb = _pairs(cells, strategy_a, strategy_b, metric, axis, split)
    result: dict[str, Any] = {"a": strategy_a, "b": strategy_b, "metric": metric, "n_pairs": int(va.size)}
    if va.size == 0:
        return {**result, **dict.fromkeys(("mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "p_value"))}
    d = va - vb
    idx = np.random.default_rng(seed).integers(0, d.size, size=(n_resamples, d.size))
    boot = d[idx].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    mean_diff = float(d.mean())
    return {**result, "mean_a": float(va.mean()), "mean_b": float(vb.mean()), "mean_diff": mean_diff,
            "ci_low": float(low), "ci_high": float(high),
            "p_value": sign_flip_p_value(d, n_resamples, seed)}
