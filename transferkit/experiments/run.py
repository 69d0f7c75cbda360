"""The composition root: the only place that wires the layers together for one run.

config -> data (read, validate, split, budget) -> model + task head -> strategy.prepare
-> fit (Trainer, closed-form head, or classical) -> evaluate -> run directory.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferkit.core.config import RunConfig, build_dataclass
from transferkit.core.contracts import Predictor, TextExamples
from transferkit.core.errors import UserError
from transferkit.evaluation import evaluate
from transferkit.experiments.card import model_card
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.experiments.run_dir import RunDirectory
from transferkit.experiments.splits import Splits, class_counts, load_splits
from transferkit.models import check_weights, resolve
from transferkit.modules import build_task_model, count_parameters
from transferkit.serving import NeuralPredictor
from transferkit.serving.predictor import base_reference
from transferkit.strategies import STRATEGIES
from transferkit.strategies.common import load_source
from transferkit.tasks import TASKS
from transferkit.training import FitResult, Trainer, seed_everything
from transferkit.training.inference import run_batches

logger = logging.getLogger("transferkit")


@dataclass
class RunResult:
    output: str
    metrics: dict[str, Any]
    config: dict[str, Any]
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclass
class Components:
    """The strategy and task a config names, with validated options."""

    strategy: Any
    task_cls: type
    task_config: Any

    def resolved(self, config: RunConfig) -> dict[str, Any]:
        """The fully resolved config (every default written out) as saved in config.yaml."""
        raw = config.to_dict()
        raw["strategy"] = {"name": self.strategy.name, **dataclasses.asdict(self.strategy.config)}
        raw["task"] = {"name": self.task_cls.name, **dataclasses.asdict(self.task_config)}
        return raw


def components(config: RunConfig) -> Components:
    """Build strategy and task from the config; fails before any work on a bad name or option."""
    strategy_cls = STRATEGIES.get(config.strategy.name)
    strategy = strategy_cls(build_dataclass(strategy_cls.Config, config.strategy.options, "strategy"))
    task_cls = TASKS.get(config.task.name)
    task_config = build_dataclass(task_cls.Config, config.task.options, "task")
    if task_cls.name not in strategy.supports:
        raise UserError(f"strategy '{strategy.name}' does not support task '{task_cls.name}' "
                        f"(it supports: {', '.join(sorted(strategy.supports))})")
    check_task = getattr(strategy, "check_task", None)  # options that fit some tasks only (e.g. a head kind)
    if check_task is not None:
        check_task(task_cls)
    return Components(strategy, task_cls, task_config)


def check_model(ref: str, random_init: bool) -> None:
    """Fail before any work on an unknown model or a directory without safe weights."""
    resolved = resolve(ref)
    if resolved.is_local and not random_init:
        check_weights(resolved.path_or_id)


def train(config: RunConfig, resume: bool = False, cache: EmbeddingCache | None = None) -> RunResult:
    """Run one configuration end to end and write its run directory; returns its metrics."""
    if not config.output:
        raise UserError("no output directory: pass --output DIR or set output in the config")
    parts = components(config)
    run = RunDirectory(config.output, resume)
    run.check()
    if parts.strategy.kind != "classical":
        check_source = getattr(parts.strategy, "check_source", None)  # strategies that build their own encoder
        if check_source is not None:
            check_source(config.model)
        else:
            check_model(config.model, random_init=parts.strategy.random_init)
    splits = load_splits(config.data, config.training.seed, parts.task_config, parts.task_cls.data_kind)
    task = parts.task_cls(parts.task_config, splits.labels.names)
    if config.training.metric_for_best is None:
        config.training = dataclasses.replace(config.training, metric_for_best=task.primary_metric)
    resolved = parts.resolved(config)
    with run:
        logger.info("run %s: %s on %s, %d train / %d eval examples", run.output, parts.strategy.name,
                    config.model, len(splits.train), len(splits.eval))
        started = time.perf_counter()
        predictor, fit, params = fit_predictor(config, parts.strategy, task, splits, run.checkpoint_dir, resume,
                                               cache or EmbeddingCache())
        train_seconds = time.perf_counter() - started
        metrics = _metrics(predictor, task, splits, fit, params, train_seconds)
        predictor.save(run.path("model"))
        splits.labels.save(run.path("model/labels.json"))
        summary = {"train_size": len(splits.train), "eval_size": len(splits.eval), "labels": splits.labels.names,
                   "train_counts": class_counts(splits.train, splits.labels) if task.data_kind == "text" else {}}
        run.write_yaml("config.yaml", resolved)
        run.write_json("metrics.json", metrics)
        history = fit.history if fit else []
        run.write_json("history.json", history)
        run.write_text("card.md", model_card(resolved, metrics, summary))
    return RunResult(run.output, metrics, resolved, history)


def _metrics(predictor: Predictor, task: Any, splits: Splits, fit: FitResult | None, params: tuple[int, int],
             train_seconds: float) -> dict[str, Any]:
    started = time.perf_counter()
    metrics: dict[str, Any] = {"eval": evaluate(predictor, task, splits.eval)}
    if splits.test is not None:
        metrics["test"] = {"test": evaluate(predictor, task, splits.test)}
    # The split best-checkpoint restore chose on (per-epoch evaluation): its figures are optimistic.
    metrics["selected_on"] = "eval" if fit is not None and fit.best_step is not None else None
    encoder = getattr(predictor, "meta", {}).get("encoder")
    if encoder:
        metrics["encoder"] = encoder
    metrics.update({
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - started,
        "train_size": len(splits.train),
        "steps": fit.steps if fit else 0,
        "best_step": fit.best_step if fit else None,
        "trainable_parameters": params[0],
        "total_parameters": params[1],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })
    return metrics


def fit_predictor(config: RunConfig, strategy: Any, task: Any, splits: Splits, checkpoint_dir: str, resume: bool,
                  cache: EmbeddingCache) -> tuple[Predictor, FitResult | None, tuple[int, int]]:
    """Fit according to the strategy's kind; returns (predictor, fit history, (trainable, total) params)."""
    seed_everything(config.training.seed)
    if strategy.kind == "classical":
        predictor = strategy.fit(splits.train, splits.labels.names, config.training.seed)
        size = int(predictor.classifier.coef_.size + predictor.classifier.intercept_.size)
        return predictor, None, (size, size)
    loaded = load_source(strategy, config.model, splits.train, seq2seq=getattr(task, "generative", False))
    model = strategy.prepare(build_task_model(loaded, task, getattr(strategy, "mlp_hidden", 0)))
    params = count_parameters(model)
    meta = {"task": task.name, "task_options": dataclasses.asdict(task.config), "strategy": strategy.name,
            "source_model": config.model, "mlp_hidden": getattr(strategy, "mlp_hidden", 0)}
    if loaded.info:
        meta["encoder"] = loaded.info
    if getattr(strategy, "saves_delta", False):
        meta["base_model"] = base_reference(config.model, loaded.fingerprint)
        meta["strategy_options"] = dataclasses.asdict(strategy.config)
    predictor = NeuralPredictor(model, loaded.tokenizer, config.data.max_length, meta, config.training.eval_batch_size)
    trainer = Trainer(strategy, config.training, predictor.collator, checkpoint_dir=checkpoint_dir)
    if strategy.kind == "frozen":
        fit = _fit_frozen(config, strategy, predictor, splits, trainer, resume, cache, loaded.fingerprint)
    else:
        eval_features = predictor.featurize(splits.eval)
        fit = trainer.fit(model, predictor.featurize(splits.train),
                          lambda m: predictor.metrics_on(m, eval_features, task.references(splits.eval)), resume=resume)
    model.eval()
    return predictor, fit, params


def _fit_frozen(config: RunConfig, strategy: Any, predictor: NeuralPredictor, splits: Splits, trainer: Trainer,
                resume: bool, cache: EmbeddingCache, fingerprint: str) -> FitResult | None:
    """Frozen encoder: features from the cache, then a closed-form or Trainer-fitted head."""
    model, task = predictor.model, predictor.task
    if getattr(task, "ragged_outputs", False):
        return _fit_frozen_tokens(predictor, splits, trainer, resume)
    key = {"model": fingerprint, "layer": model.layer, "pooling": task.config.pooling,
           "max_length": predictor.max_length}

    def encode(examples: TextExamples) -> np.ndarray:
        return run_batches(model.encode, predictor.featurize(examples), predictor.collator, predictor.batch_size)

    model.eval()
    train_x, eval_x = cache.features(key, splits.train, encode), cache.features(key, splits.eval, encode)
    train_y = np.asarray(splits.train.labels)
    if strategy.fit_head(model, train_x, train_y, config.training.seed):
        return None
    rows = [{"features": x, "labels": int(y)} for x, y in zip(train_x, train_y, strict=True)]
    eval_rows = [{"features": x} for x in eval_x]
    return trainer.fit(model, rows, lambda m: predictor.metrics_on(m, eval_rows, splits.eval.labels, 1024),
                       resume=resume)


def _fit_frozen_tokens(predictor: NeuralPredictor, splits: Splits, trainer: Trainer, resume: bool) -> FitResult:
    """Per-token tasks: the frozen encoder's token states ``H = h_layer(x)`` (len_i, dim) of every window,
    computed once in memory; the Trainer then fits the token/span head ``W h_t + b`` on them for all epochs.

    Rows keep the original features (``input_ids`` for length grouping and for cutting padded
    outputs, ``_`` metadata for decoding); ``TaskModel.forward`` sees ``features`` and skips the encoder.
    """
    model, task = predictor.model, predictor.task
    model.eval()

    def with_states(examples: Any) -> list[dict[str, Any]]:
        features = predictor.featurize(examples)
        states = run_batches(model.hidden_states, features, predictor.collator, predictor.batch_size, ragged=True)
        return [{**feature, "features": state} for feature, state in zip(features, states, strict=True)]

    train_rows, eval_rows = with_states(splits.train), with_states(splits.eval)
    references = task.references(splits.eval)
    return trainer.fit(model, train_rows, lambda m: predictor.metrics_on(m, eval_rows, references), resume=resume)
