"""Metrics and their uncertainty: numpy only, checked against scikit-learn in the tests."""

from transferkit.evaluation.bootstrap import BOOTSTRAP_METRICS, bootstrap_ci, mean_ci, resample_indices
from transferkit.evaluation.continual import continual_summary, seen_accuracy
from transferkit.evaluation.evaluate import evaluate
from transferkit.evaluation.metrics import (
    average_ranks,
    classification_metrics,
    confusion_matrix,
    metrics_from_confusion,
    roc_auc_ovr,
)
from transferkit.evaluation.student_t import normal_quantile, t_quantile

__all__ = [
    "BOOTSTRAP_METRICS", "average_ranks", "bootstrap_ci", "classification_metrics", "confusion_matrix", "continual_summary",
    "evaluate", "mean_ci", "metrics_from_confusion", "normal_quantile", "resample_indices", "roc_auc_ovr", "seen_accuracy",
    "t_quantile",
]
