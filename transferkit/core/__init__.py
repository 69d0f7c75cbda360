"""Typed containers, contracts, configuration and registries (no torch)."""

from transferkit.core.config import ComponentSpec, DataConfig, RunConfig, TrainingConfig, apply_overrides
from transferkit.core.contracts import Batch, Callback, Losses, Predictor, Splits, Task, TextExamples, TrainState
from transferkit.core.errors import UserError
from transferkit.core.registry import Registry

__all__ = [
    "Batch", "Callback", "ComponentSpec", "DataConfig", "Losses", "Predictor", "Registry", "RunConfig",
    "Splits", "Task", "TextExamples", "TrainState", "TrainingConfig", "UserError", "apply_overrides",
]
