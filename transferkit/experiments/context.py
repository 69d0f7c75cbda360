"""``Context``: the one implementation of ``core.contracts.RunContext``, the services a strategy's plan runs on.

It knows the run (config, task, splits, run directory, embedding cache, ``--resume``) and nothing about
any method: data sources are read by the run's task when a plan asks for them, finished runs are loaded
for inference, predictors are built for whatever task model a plan made, and every training stage goes
through the one Trainer.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transferkit.core.config import DataConfig, RunConfig, SourceConfig, source_configs
from transferkit.core.contracts import Callback, FinishedRun, Objective, Splits
from transferkit.core.errors import UserError
from transferkit.core.run_files import STATE_DIR
from transferkit.experiments.embedding_cache import EmbeddingCache, default_cache_dir
from transferkit.experiments.init_from import fingerprint_run, initialise_from
from transferkit.serving import NeuralPredictor
from transferkit.serving.encoder_predictor import EncoderPredictor
from transferkit.serving.predictor import load_predictor, merge_delta
from transferkit.training import FitResult, Trainer, has_checkpoint

logger = logging.getLogger("transferkit")


@dataclass
class Context:
    """One run's services (see ``core.contracts.RunContext``).

    ``work_dir`` is the run directory being written (``<output>.partial``), ``checkpoint_dir`` where resumable
    training stages checkpoint, ``resume`` whether they continue from there, ``callbacks`` run-level callbacks
    (a tuner's pruner, a scheduler's rungs) that every resumable stage's Trainer calls after the method's own.
    """

    config: RunConfig
    task: Any
    splits: Splits
    work_dir: str
    checkpoint_dir: str | None = None
    resume: bool = False
    cache: EmbeddingCache = field(default_factory=EmbeddingCache)
    callbacks: Sequence[Callback] = ()
    _sources: dict[str, Any] = field(default_factory=dict)

    def source(self, name: str) -> Any:
        specs = source_configs(self.config.data.sources)
        if name not in specs:
            raise UserError(f"data.sources.{name} is not set: add it to the config (--set data.sources.{name}=FILE)")
        if name not in self._sources:
            self._sources[name] = read_source(name, specs[name], self.task, self.config.data)
            logger.info("data.sources.%s: %d examples", name, len(self._sources[name]))
        return self._sources[name]

    def sources(self) -> dict[str, Any]:
        return {name: self.source(name) for name in source_configs(self.config.data.sources)}

    def load_run(self, run_dir: str) -> FinishedRun:
        predictor = load_predictor(run_dir)
        if not isinstance(predictor, NeuralPredictor):
            raise UserError(f"{run_dir}: a {type(predictor).__name__} model has no neural outputs to learn from")
        if "base_model" in predictor.meta:
            predictor = merge_delta(predictor)
        predictor.model.eval()
        return FinishedRun(run_dir, predictor, fingerprint_run(run_dir))

    def start_from_run(self, model: Any) -> tuple[dict[str, Any], str] | None:
        if not self.config.init_from:
            return None
        start = initialise_from(model, self.config.init_from, self.task)
        return start.describe(), start.fingerprint

    def predictor(self, model: Any, loaded: Any, meta: dict[str, Any]) -> Any:
        batch_size = self.config.training.eval_batch_size
        if loaded.encoder is not None:  # a frozen text encoder maps texts to vectors itself: no tokenizer
            predictor = EncoderPredictor(model, loaded.encoder, meta, batch_size)
        else:
            predictor = NeuralPredictor(model, loaded.tokenizer, self.config.data.max_length, meta, batch_size)
        for where, examples in named_data(self.config.data, self.splits):
            predictor.check_inputs(examples, where)
        return predictor

    def cached(self, key: dict[str, Any], examples: Any, encode: Callable[[Any], Any]) -> Any:
        return self.cache.features(key, examples, encode)

    def train(self, objective: Objective, model: Any, batches: Any, evaluate: Any = None, training: Any = None,
              resumable: bool = True, stage: str | None = None) -> FitResult:
        directory = self.checkpoint_dir if stage is None else self.state_path(stage)
        resume = self.resume and resumable and directory is not None and has_checkpoint(directory)
        trainer = Trainer(objective, training or self.config.training,
                          checkpoint_dir=directory if resumable else None,
                          callbacks=self.callbacks if resumable else ())
        return trainer.fit(model, batches, evaluate, resume=resume)

    def cache_dir(self) -> str:
        return default_cache_dir()

    def run_path(self, name: str) -> str:
        return os.path.join(self.work_dir, name)

    def state_path(self, name: str) -> str:
        return os.path.join(self.work_dir, STATE_DIR, name)


def read_source(name: str, spec: SourceConfig, task: Any, data: DataConfig) -> Any:
    """Named extra data, read by the run's task with the source's own columns (text-only without a label column)."""
    columns = {"text_column": spec.text_column or data.text_column,
               "text_pair_column": spec.text_pair_column or data.text_pair_column,
               "label_column": spec.label_column or data.label_column, "format": spec.format,
               "columns": spec.columns or data.columns}
    examples = task.read(spec.path, dataclasses.replace(data, **columns), require_targets=spec.label_column is not None)
    if not len(examples):
        raise UserError(f"data.sources.{name}: {spec.path} holds no examples")
    return examples


def named_data(data: DataConfig, splits: Splits) -> list[tuple[str, Any]]:
    """The data sets a run reads from files, named as in the config: train, eval (if a file), each test set."""
    named = [("data.train", splits.train), *([("data.eval", splits.eval)] if data.eval else [])]
    tests = data.test if isinstance(data.test, dict) else {}
    return named + [(f"data.test.{name}" if name in tests else "data.test", examples)
                    for name, examples in splits.tests.items()]
