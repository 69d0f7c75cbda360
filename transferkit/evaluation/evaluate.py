"""Evaluate a predictor on labelled examples: the task's metrics plus bootstrap 95% CIs."""

from __future__ import annotations

from typing import Any

import numpy as np

from transferkit.core.contracts import Predictor, Task, TextExamples
from transferkit.evaluation.bootstrap import bootstrap_ci


def evaluate(predictor: Predictor, task: Task, examples: TextExamples, seed: int = 0) -> dict[str, Any]:
    """Metrics of ``predictor`` on ``examples`` with percentile-bootstrap CIs (1,000 resamples).

    Tasks other than classification evaluate their own predictions (``task.evaluate``).
    """
    if hasattr(task, "evaluate"):
        return task.evaluate(predictor.predict(examples), examples, seed)
    probabilities = predictor.predict_proba(examples)
    references = np.asarray(examples.labels)
    metrics = task.metrics(probabilities, references)
    metrics["ci95"] = bootstrap_ci(references, probabilities.argmax(axis=1), len(task.labels), seed=seed)
    return metrics
