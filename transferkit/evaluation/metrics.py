"""Classification metrics computed from a confusion matrix, in plain numpy.

Everything is derived from the ``K x K`` confusion matrix ``C`` (rows = true
class, columns = predicted class), so the same code serves a single evaluation
and a stack of bootstrap resamples (``C`` of shape ``(..., K, K)``).

Conventions (identical to scikit-learn with ``labels=range(K)`` and
``zero_division=0``):

* macro averages are unweighted means over **all** ``K`` declared classes;
* any ratio with a zero denominator is ``0.0``;
* ROC AUC uses the Mann-Whitney U statistic with average ranks for ties.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferkit.core.errors import UserError

__all__ = [
    "as_class_ids", "average_ranks", "classification_metrics", "confusion_matrix", "metrics_from_confusion", "roc_auc_ovr",
]


def as_class_ids(values: Any, num_classes: int, name: str) -> np.ndarray:
    """Validate a 1-D array of class ids in ``[0, num_classes)`` and return it as ``int64``.

    Parameters
    ----------
    values : array_like
        Integer class ids.
    num_classes : int
        Number of classes ``K``.
    name : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        ``int64`` array of shape ``(n,)``.

    Raises
    ------
    UserError
        If the array is not 1-D, not integral, or holds an id outside ``[0, K)``.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise UserError(f"{name} must be a 1-D array of class ids, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise UserError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise UserError(f"{name} holds class id {bad}, outside [0, {num_classes}) for {num_classes} classes")
    return arr


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Count matrix ``C[i, j] = #{m : y_true[m] = i and y_pred[m] = j}``.

    Computed with one ``np.bincount`` over the flat codes ``K * y_true + y_pred``.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (n,)
        True and predicted class ids in ``[0, K)``.
    num_classes : int
        Number of classes ``K`` (``>= 1``).

    Returns
    -------
    numpy.ndarray
        ``int64`` array of shape ``(K, K)``; rows are true classes, columns predictions.
    """
    if int(num_classes) < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    k = int(num_classes)
    t = as_class_ids(y_true, k, "y_true")
    p = as_class_ids(y_pred, k, "y_pred")
    if t.shape != p.shape:
        raise UserError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    return np.bincount(k * t + p, minlength=k * k).reshape(k, k)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den`` with ``0.0`` wherever ``den == 0`` (``zero_division=0``)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(num.shape, den.shape), dtype=np.float64)
    return np.divide(num, den, out=out, where=den != 0)


def metrics_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, per-class and averaged precision/recall/F1 from confusion matrices.

    With ``TP_k = C[k, k]``, ``FP_k = sum_i C[i, k] - TP_k``, ``FN_k = sum_j C[k, j] - TP_k``
    and ``N = sum C``:

    * ``accuracy = trace(C) / N``
    * ``precision_k = TP_k / (TP_k + FP_k)``, ``recall_k = TP_k / (TP_k + FN_k)``
    * ``F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k)`` (the harmonic mean of the two)
    * ``macro_x = (1/K) sum_k x_k``; ``weighted_f1 = sum_k support_k F1_k / N``

    where ``support_k = TP_k + FN_k``; a zero denominator gives ``0.0``.

    Parameters
    ----------
    cm : numpy.ndarray
        Confusion matrix of shape ``(K, K)`` or a stack of shape ``(..., K, K)``.

    Returns
    -------
    dict of str to numpy.ndarray
        ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1``, ``weighted_f1``
        (shape ``(...)``) and ``precision``, ``recall``, ``f1``, ``support`` (shape ``(..., K)``).
    """
    cm = np.asarray(cm)
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise UserError(f"confusion matrix must have shape (..., K, K), got {cm.shape}")
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    predicted = cm.sum(axis=-2).astype(np.float64)
    support = cm.sum(axis=-1).astype(np.float64)
    total = support.sum(axis=-1)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2.0 * tp, predicted + support)
    return {
        "accuracy": _safe_divide(tp.sum(axis=-1), total),
        "macro_precision": precision.mean(axis=-1),
        "macro_recall": recall.mean(axis=-1),
        "macro_f1": f1.mean(axis=-1),
        "weighted_f1": _safe_divide((f1 * support).sum(axis=-1), total),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
    }


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks ``1..n`` of each column of ``scores``, ties sharing their average rank.

    A tie group occupying sorted positions ``a..b`` (0-based) gets rank ``(a + b) / 2 + 1``.
    All columns are ranked at once: tie groups get global ids via a cumulative sum and
    their mean position is one ``np.bincount`` ratio.

    Parameters
    ----------
    scores : numpy.ndarray
        Array of shape ``(n, K)``.

    Returns
    -------
    numpy.ndarray
        ``float64`` ranks of shape ``(n, K)``.
    """
    cols = np.asarray(scores, dtype=np.float64).T  # (K, n)
    k, n = cols.shape
    order = np.argsort(cols, axis=1, kind="stable")
    ordered = np.take_along_axis(cols, order, axis=1)
    starts = np.ones((k, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = np.cumsum(starts.ravel()) - 1
    position = np.tile(np.arange(n, dtype=np.float64), k)
    mean_position = np.bincount(group, weights=position) / np.bincount(group)
    ranks = np.empty((k, n), dtype=np.float64)
    np.put_along_axis(ranks, order, (mean_position[group] + 1.0).reshape(k, n), axis=1)
    return ranks.T


def roc_auc_ovr(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """One-vs-rest ROC AUC of every column, via the Mann-Whitney U statistic.

    For class ``k`` with ``n_pos`` positives (``y_true == k``), ``n_neg`` negatives and
    ``R_k`` the sum of the average ranks of the positives' scores in column ``k``::

        AUC_k = (R_k - n_pos (n_pos + 1) / 2) / (n_pos * n_neg)

    which equals ``P(s_pos > s_neg) + 0.5 P(s_pos = s_neg)``.

    Parameters
    ----------
    y_true : numpy.ndarray
        Class ids of shape ``(n,)``.
    scores : numpy.ndarray
        Scores of shape ``(n, K)``; column ``k`` scores class ``k``.

    Returns
    -------
    numpy.ndarray
        Shape ``(K,)``; ``nan`` for a class with no positives or no negatives.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, k = scores.shape
    positive = np.asarray(y_true)[:, None] == np.arange(k)[None, :]
    n_pos = positive.sum(axis=0).astype(np.float64)
    n_neg = n - n_pos
    rank_sum = np.where(positive, average_ranks(scores), 0.0).sum(axis=0)
    defined = (n_pos > 0) & (n_neg > 0)
    u = rank_sum - n_pos * (n_pos + 1.0) / 2.0
    auc = np.full(k, np.nan)
    auc[defined] = u[defined] / (n_pos[defined] * n_neg[defined])
    return auc


def _check_inputs(y_true: Any, probabilities: Any, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``classification_metrics`` inputs; return ``(y_true, probabilities)`` arrays."""
    names = [str(label) for label in labels]
    if len(names) < 2:
        raise UserError(f"classification needs at least 2 labels, got {len(names)}")
    if len(set(names)) != len(names):
        raise UserError(f"labels must be unique, got {names}")
    probs = np.asarray(probabilities, dtype=np.float64)
    k = len(names)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise UserError(f"probabilities must have shape (n, {k}) for {k} labels, got {probs.shape}")
    truth = as_class_ids(y_true, k, "y_true")
    if truth.size != probs.shape[0]:
        raise UserError(f"y_true has {truth.size} examples but probabilities has {probs.shape[0]} rows")
    if truth.size == 0:
        raise UserError("no examples to evaluate")
    if not np.isfinite(probs).all():
        raise UserError("probabilities contain NaN or infinite values")
    return truth, probs


def _roc_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Binary: AUC of ``P(class 1)``; multiclass: mean OvR AUC over classes present in ``y_true``.

    Classes absent from ``y_true`` are skipped; ``None`` when no class's AUC is defined.
    """
    auc = roc_auc_ovr(y_true, probabilities)
    if probabilities.shape[1] == 2:
        auc = auc[1:]
    auc = auc[np.isfinite(auc)]
    return float(auc.mean()) if auc.size else None


def _per_class(m: dict[str, np.ndarray], names: list[str]) -> dict[str, dict[str, float | int]]:
    """``{label: {precision, recall, f1, support}}`` as Python floats/ints."""
    return {
        name: {
            "precision": float(m["precision"][i]),
            "recall": float(m["recall"][i]),
            "f1": float(m["f1"][i]),
            "support": int(m["support"][i]),
        }
        for i, name in enumerate(names)
    }


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> dict:
    """Evaluate class probabilities against true labels; all values are JSON-serialisable.

    Predictions are ``argmax_k probabilities[:, k]`` (first maximum on ties).  The point
    metrics follow :func:`metrics_from_confusion`; ``roc_auc`` follows :func:`roc_auc_ovr`
    (binary: AUC of ``P(class 1)``; multiclass: unweighted mean of the one-vs-rest AUCs of
    the classes present in ``y_true``; ``None`` when not computable, e.g. one class only).

    Parameters
    ----------
    y_true : numpy.ndarray
        True class ids, shape ``(n,)``, values in ``[0, K)``.
    probabilities : numpy.ndarray
        Class probabilities (or any per-class scores), shape ``(n, K)``.
    labels : list of str
        The ``K`` class names, in class-id order.

    Returns
    -------
    dict
        ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1``, ``weighted_f1``,
        ``per_class`` (``{label: {precision, recall, f1, support}}``), ``roc_auc``,
        ``confusion_matrix`` (list of lists, rows = true class) and ``num_examples``.

    Raises
    ------
    UserError
        On mismatched shapes, out-of-range ids, non-finite scores, duplicate labels or no examples.
    """
    truth, probs = _check_inputs(y_true, probabilities, labels)
    names = [str(label) for label in labels]
    cm = confusion_matrix(truth, probs.argmax(axis=1), len(names))
    m = metrics_from_confusion(cm)
    return {
        "accuracy": float(m["accuracy"]),
        "macro_precision": float(m["macro_precision"]),
        "macro_recall": float(m["macro_recall"]),
        "macro_f1": float(m["macro_f1"]),
        "weighted_f1": float(m["weighted_f1"]),
        "per_class": _per_class(m, names),
        "roc_auc": _roc_auc(truth, probs),
        "confusion_matrix": cm.tolist(),
        "num_examples": int(truth.size),
    }
