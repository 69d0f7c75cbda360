"""Stratified, seeded index selection: eval hold-out, label budgets and caps.

All functions are vectorised: examples are shuffled once, grouped by class with a
stable sort, and the first ``quota[c]`` of each class are taken.  Returned indices
are sorted ascending so the original file order is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from transferkit.core.errors import UserError
from transferkit.data._messages import show


def _classes(labels: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class code per example in 0..K-1, count per class) for arbitrary integer labels."""
    array = np.asarray(labels, dtype=np.int64).reshape(-1)
    _, codes, counts = np.unique(array, return_inverse=True, return_counts=True)
    return codes.reshape(-1), counts


def _take(codes: np.ndarray, counts: np.ndarray, quota: np.ndarray, seed: int) -> np.ndarray:
    """Boolean mask selecting ``quota[c]`` random examples of every class ``c``."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(codes.size)
    order = order[np.argsort(codes[order], kind="stable")]  # grouped by class, random within
    starts = np.cumsum(counts) - counts
    rank = np.arange(codes.size) - np.repeat(starts, counts)
    mask = np.zeros(codes.size, dtype=bool)
    mask[order] = rank < np.repeat(quota, counts)
    return mask


def _round(values: np.ndarray) -> np.ndarray:
    return np.floor(values + 0.5).astype(np.int64)  # round half up, not to even


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, eval_idx): each class puts ``round(fraction * n_c)`` examples in eval.

    A class with at least 2 examples gives at least 1 to eval and keeps at least 1 for train.
    """
    if isinstance(fraction, bool) or not 0 < fraction < 1:
        raise UserError(f"data.eval_fraction must be between 0 and 1 (exclusive), got {fraction!r}")
    codes, counts = _classes(labels)
    if codes.size == 0:
        raise UserError("cannot split empty training data; add examples")
    quota = np.clip(_round(fraction * counts), 1, None)
    quota = np.where(counts >= 2, np.minimum(quota, counts - 1), 0)
    if quota.sum() == 0:
        raise UserError("cannot hold out an eval split: every class has a single example; provide data.eval")
    mask = _take(codes, counts, quota, seed)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _per_class(budget: float) -> int | None:
    """k for a per-class budget (int >= 1, or float with integer value >= 1), else None."""
    if isinstance(budget, bool):
        return None
    if isinstance(budget, (int, np.integer)) and budget >= 1:
        return int(budget)
    if isinstance(budget, (float, np.floating)) and math.isfinite(budget) and budget >= 1 and float(budget).is_integer():
        return int(budget)
    return None


def apply_budget(
    labels: Sequence[int], budget: float, seed: int, label_names: Sequence[str], source: str = "<memory>"
) -> np.ndarray:
    """Indices kept under a label budget: ``k`` examples per class, or a stratified fraction."""
    array = np.asarray(labels, dtype=np.int64).reshape(-1)
    k = _per_class(budget)
    if k is not None:
        counts = np.bincount(array, minlength=len(label_names))
        short = np.flatnonzero(counts < k)
        if short.size:
            c = int(short[0])
            raise UserError(
                f"{source}: data.budget={k} asks for {k} examples per class but class {show(label_names[c])} "
                f"has only {int(counts[c])}; lower data.budget or use a fraction"
            )
        codes, present = _classes(array)
        return np.flatnonzero(_take(codes, present, np.full(present.size, k), seed))
    valid = isinstance(budget, (float, int, np.floating, np.integer)) and not isinstance(budget, bool)
    if valid and 0 < budget < 1:
        codes, counts = _classes(array)
        quota = np.minimum(np.clip(_round(budget * counts), 1, None), counts)
        return np.flatnonzero(_take(codes, counts, quota, seed))
    raise UserError(
        f"data.budget must be an integer >= 1 (examples per class) or a fraction between 0 and 1, got {budget!r}"
    )


def _proportional(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainder, capped at counts)."""
    exact = counts * (total / counts.sum()) if counts.sum() else np.zeros(counts.size)
    quota = np.minimum(np.floor(exact).astype(np.int64), counts)
    left = total - int(quota.sum())
    if left > 0:
        room = quota < counts
        priority = np.where(room, exact - quota, -np.inf)
        winners = np.argsort(-priority, kind="stable")[:left]
        quota[winners[room[winners]]] += 1
    return quota


def cap_examples(labels: Sequence[int], n: int, seed: int) -> np.ndarray:
    """Indices of a stratified subsample of at most ``n`` examples (every class kept when n allows)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise UserError(f"data.max_train_examples must be an integer >= 1, got {n!r}")
    codes, counts = _classes(labels)
    if n >= codes.size:
        return np.arange(codes.size)
    quota = _proportional(counts, n)
    if n >= counts.size:  # keep every class: a class rounded to 0 takes one from the largest quota
        for empty in np.flatnonzero(quota == 0).tolist():
            quota[int(np.argmax(quota))] -= 1
            quota[empty] = 1
    return np.flatnonzero(_take(codes, counts, quota, seed))
