"""Evaluate a predictor on labelled examples: the task's metrics plus bootstrap 95% CIs."""

from __future__ import annotations

from typing import Any

from transferkit.core.contracts import Predictor, Task


def evaluate(predictor: Predictor, task: Task, examples: Any, seed: int = 0) -> dict[str, Any]:
    """Metrics of ``predictor`` on ``examples`` with bootstrap CIs: the task scores its own predictions."""
    return task.evaluate(predictor.predict(examples), examples, seed)
