"""``MemoryContext``: a run context (``core.contracts.RunContext``) over in-memory examples, for contract checks.

It offers what a plan needs to run on a tiny model without a run directory: the run's task and examples
(train doubles as eval), the Trainer (no checkpoints), predictors built as a run builds them, a pass-through
embedding cache and one temporary work directory.  It has no data sources, no ``init_from`` and no finished
runs to load: a strategy whose ``check`` needs a teacher or a data source is checked end to end by a real run
instead (``experiments.run.train``; ``tests/strategies/test_contracts.py`` does both).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transferkit.core.config import DataConfig, RunConfig, TrainingConfig
from transferkit.core.contracts import FinishedRun, Objective, Splits
from transferkit.core.errors import UserError
from transferkit.serving import NeuralPredictor
from transferkit.serving.encoder_predictor import EncoderPredictor
from transferkit.training.trainer import FitResult, Trainer


@dataclass
class MemoryContext:
    """The run context of ``config`` over ``splits`` for ``task`` (see the module docstring)."""

    config: RunConfig
    task: Any
    splits: Splits
    work_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="transferkit-memory-run-"))

    @classmethod
    def for_examples(cls, task: Any, train: Any, model_ref: str, strategy: Any, seed: int = 0) -> MemoryContext:
        """A context training ``strategy`` on ``train`` (also the eval split) from ``model_ref``: 2 epochs of 8 rows
        at 64 tokens, the strategy's other defaults resolved as a run resolves them."""
        training = strategy.resolve_training(TrainingConfig(epochs=2, batch_size=8, progress=False, checkpoint_every=0,
                                                            seed=seed, metric_for_best=task.primary_metric))
        config = RunConfig(model=model_ref, data=strategy.resolve_data(DataConfig(max_length=64)), training=training)
        return cls(config, task, Splits(train, train, {}, list(task.labels)))

    def source(self, name: str) -> Any:
        raise UserError(f"data.sources.{name}: a memory context has no data sources")

    def sources(self) -> dict[str, Any]:
        return {}

    def load_run(self, run_dir: str) -> FinishedRun:
        raise NotImplementedError("a memory context loads no finished runs")

    def start_from_run(self, model: Any) -> tuple[dict[str, Any], str] | None:
        return None

    def predictor(self, model: Any, loaded: Any, meta: dict[str, Any]) -> Any:
        batch_size = self.config.training.eval_batch_size
        if loaded.encoder is not None:  # a frozen text encoder maps texts to vectors itself
            return EncoderPredictor(model, loaded.encoder, meta, batch_size)
        return NeuralPredictor(model, loaded.tokenizer, self.config.data.max_length, meta, batch_size)

    def cached(self, key: dict[str, Any], examples: Any, encode: Callable[[Any], Any]) -> Any:
        return encode(examples)

    def train(self, objective: Objective, model: Any, batches: Any, evaluate: Any = None, training: Any = None,
              resumable: bool = True, stage: str | None = None) -> FitResult:
        return Trainer(objective, training or self.config.training).fit(model, batches, evaluate)

    def cache_dir(self) -> str:
        return os.path.join(tempfile.gettempdir(), "transferkit-memory-context")

    def run_path(self, name: str) -> str:
        return os.path.join(self.work_dir, name)

    def state_path(self, name: str) -> str:
        return os.path.join(self.work_dir, "checkpoints", name)
