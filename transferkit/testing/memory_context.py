"""``MemoryContext``: a run context (``core.contracts.RunContext``) over in-memory examples, for contract checks.

It offers what a plan needs to run on a tiny model without a run directory: the run's task and examples
(train doubles as eval), the Trainer (no checkpoints), predictors, a pass-through embedding cache and a
temporary directory.  It has no data sources, no ``init_from`` and no finished runs to load.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transferkit.core.config import DataConfig, RunConfig, TrainingConfig
from transferkit.core.contracts import FinishedRun, Objective, Splits
from transferkit.serving import NeuralPredictor
from transferkit.training.trainer import FitResult, Trainer


@dataclass
class MemoryContext:
    """The run context of ``config`` over ``splits`` for ``task`` (see the module docstring)."""

    config: RunConfig
    task: Any
    splits: Splits

    @classmethod
    def for_examples(cls, task: Any, train: Any, model_ref: str, seed: int = 0) -> MemoryContext:
        """A context training on ``train`` (also the eval split) from ``model_ref``, 2 epochs of 8 rows, max length 64."""
        config = RunConfig(model=model_ref, data=DataConfig(max_length=64),
                           training=TrainingConfig(epochs=2, batch_size=8, learning_rate=1e-3, eval_every_epoch=True,
                                                   progress=False, checkpoint_every=0, seed=seed,
                                                   metric_for_best=task.primary_metric))
        return cls(config, task, Splits(train, train, {}, list(task.labels)))

    def source(self, name: str) -> Any:
        raise KeyError(f"a memory context has no data source {name!r}")

    def sources(self) -> dict[str, Any]:
        return {}

    def load_run(self, run_dir: str) -> FinishedRun:
        raise NotImplementedError("a memory context loads no finished runs")

    def start_from_run(self, model: Any) -> tuple[dict[str, Any], str] | None:
        return None

    def predictor(self, model: Any, loaded: Any, meta: dict[str, Any]) -> Any:
        return NeuralPredictor(model, loaded.tokenizer, self.config.data.max_length, meta)

    def cached(self, key: dict[str, Any], examples: Any, encode: Callable[[Any], Any]) -> Any:
        return encode(examples)

    def train(self, objective: Objective, model: Any, batches: Any, evaluate: Any = None, training: Any = None,
              resumable: bool = True) -> FitResult:
        return Trainer(objective, training or self.config.training).fit(model, batches, evaluate)

    def cache_dir(self) -> str:
        return os.path.join(tempfile.gettempdir(), "transferkit-memory-context")

    def run_path(self, name: str) -> str:
        return os.path.join(tempfile.mkdtemp(prefix="transferkit-run-"), name)
