"""Uncertainty of metrics: percentile bootstrap over examples, t interval over seeds.

The bootstrap is fully vectorised: resamples are drawn as an ``(R, n)`` index matrix
in row chunks (to bound memory), every resample's confusion matrix comes from one
``np.bincount`` and the metrics of all resamples from stacked-matrix array math.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from transferkit.core.errors import UserError
from transferkit.evaluation.metrics import as_class_ids, metrics_from_confusion
from transferkit.evaluation.student_t import t_quantile

__all__ = ["BOOTSTRAP_METRICS", "bootstrap_ci", "mean_ci", "resample_indices"]

BOOTSTRAP_METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
"""The metrics :func:`bootstrap_ci` returns intervals for."""

CHUNK_ELEMENTS = 1 << 22
"""Default bound on ``rows * n`` per chunk (about 32 MiB per int64 array)."""


def check_confidence(confidence: float) -> float:
    """Return ``confidence`` as a float, raising :class:`UserError` unless ``0 < confidence < 1``."""
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise UserError(f"confidence must be strictly between 0 and 1, got {confidence}")
    return value


def _check_labels(y_true: Any, y_pred: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate a non-empty pair of aligned class-id arrays; return ``(y_true, y_pred, K)``."""
    if int(num_classes) < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    k = int(num_classes)
    truth, pred = as_class_ids(y_true, k, "y_true"), as_class_ids(y_pred, k, "y_pred")
    if truth.size != pred.size:
        raise UserError(f"y_true and y_pred differ in length: {truth.size} vs {pred.size}")
    if truth.size == 0:
        raise UserError("no examples to bootstrap")
    return truth, pred, k


def resample_indices(n: int, n_resamples: int, seed: int, chunk_size: int) -> Iterator[np.ndarray]:
    """Yield the bootstrap index matrix in consecutive row chunks of at most ``chunk_size`` rows.

    Row ``r`` holds ``n`` indices ``floor(n * u)`` with ``u ~ U[0, 1)`` from
    ``np.random.default_rng(seed).random``.  One uniform is consumed per index, in
    row-major order, so the concatenated matrix does not depend on ``chunk_size``.

    Parameters
    ----------
    n : int
        Number of examples to resample from.
    n_resamples : int
        Total number of rows ``R``.
    seed : int
        Seed of the generator.
    chunk_size : int
        Maximum rows per yielded chunk.

    Yields
    ------
    numpy.ndarray
        ``int64`` arrays of shape ``(rows, n)`` with values in ``[0, n)``.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, chunk_size):
        rows = min(chunk_size, n_resamples - start)
        # floor(n * u) can round up to n when u is the largest double below 1
        yield np.minimum((rng.random((rows, n)) * n).astype(np.int64), n - 1)


def _chunk_metrics(y_true: np.ndarray, y_pred: np.ndarray, index: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Metrics of each resample (row of ``index``) via one bincount of ``r K^2 + true K + pred``."""
    rows = index.shape[0]
    codes = np.arange(rows, dtype=np.int64)[:, None] * (k * k) + y_true[index] * k + y_pred[index]
    cms = np.bincount(codes.ravel(), minlength=rows * k * k).reshape(rows, k, k)
    metrics = metrics_from_confusion(cms)
    return {name: metrics[name] for name in BOOTSTRAP_METRICS}


def bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict[str, list[float]]:
    """Percentile bootstrap confidence intervals of accuracy and macro precision/recall/F1.

    Each of ``R`` resamples draws ``n`` examples with replacement (:func:`resample_indices`)
    and recomputes the metrics from its confusion matrix (``metrics_from_confusion``).  The
    interval is ``[q_{alpha/2}, q_{1-alpha/2}]`` of the ``R`` values, ``alpha = 1 - confidence``
    (linearly interpolated empirical quantiles, the ``np.quantile`` default).

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (n,)
        True and predicted class ids in ``[0, num_classes)``.
    num_classes : int
        Number of classes ``K``; macro averages run over all ``K``.
    n_resamples : int, default 1000
        Number of bootstrap resamples ``R``.
    confidence : float, default 0.95
        Two-sided coverage, strictly between 0 and 1.
    seed : int, default 0
        Seed; the result is deterministic for a seed and independent of ``chunk_size``.
    chunk_size : int, optional
        Resamples per chunk; defaults to about ``2**22 / n`` to bound memory.

    Returns
    -------
    dict of str to list of float
        ``{metric: [low, high]}`` for each name in :data:`BOOTSTRAP_METRICS`.
    """
    confidence = check_confidence(confidence)
    truth, pred, k = _check_labels(y_true, y_pred, num_classes)
    n, total = truth.size, int(n_resamples)
    rows = int(chunk_size) if chunk_size is not None else max(1, CHUNK_ELEMENTS // n)
    if total < 1 or rows < 1:
        raise UserError(f"n_resamples and chunk_size must be >= 1, got {n_resamples} and {chunk_size}")
    parts = [_chunk_metrics(truth, pred, index, k) for index in resample_indices(n, total, seed, rows)]
    alpha = 1.0 - confidence
    result: dict[str, list[float]] = {}
    for name in BOOTSTRAP_METRICS:
        values = np.concatenate([part[name] for part in parts])
        low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
        result[name] = [float(low), float(high)]
    return result


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student t confidence interval of values observed across seeds.

    With ``m`` values of mean ``x_bar`` and sample standard deviation ``s`` (``ddof=1``)::

        x_bar -/+ t_{(1 + confidence)/2, m - 1} * s / sqrt(m)

    the t quantile coming from :func:`~transferkit.evaluation.student_t.t_quantile`.

    Parameters
    ----------
    values : sequence of float
        One finite value per seed (at least one).
    confidence : float, default 0.95
        Two-sided coverage, strictly between 0 and 1.

    Returns
    -------
    tuple of float
        ``(mean, low, high)``; with a single value the interval is undefined and
        ``low = high = nan``.
    """
    confidence = check_confidence(confidence)
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise UserError("mean_ci needs at least one value")
    if not np.isfinite(arr).all():
        raise UserError("mean_ci values contain NaN or infinite entries")
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + confidence / 2.0, arr.size - 1) * float(arr.std(ddof=1)) / math.sqrt(arr.size)
    return mean, mean - half, mean + half


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> list[float]:
    """Percentile bootstrap interval ``[low, high]`` of the mean of per-example ``values``.

    Resamples come from :func:`resample_indices` (same seed,
    same draws as the classification bootstrap); quantiles are ``np.quantile``'s linear ones.
    """
    confidence = check_confidence(confidence)
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise UserError("no examples to bootstrap")
    if int(n_resamples) < 1:
        raise UserError(f"n_resamples must be >= 1, got {n_resamples}")
    rows = max(1, CHUNK_ELEMENTS // array.size)
    means = np.concatenate([array[index].mean(axis=1) for index in resample_indices(array.size, int(n_resamples), seed, rows)])
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return [float(low), float(high)]
