"""The composition root: the only place that wires the layers together for one run.

config -> checks (names, options, required sources, the model) -> task.read_splits -> one run
context (``experiments.context.Context``) -> ``strategy.fit(ctx)``, the method's own plan ->
evaluate on eval and every test set -> run directory.  It knows no kind of strategy: everything
task- or strategy-specific happens behind their hooks.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transferkit.core.config import RunConfig, build_dataclass, test_configs
from transferkit.core.contracts import Callback, Fitted, Splits
from transferkit.core.errors import UserError
from transferkit.core.machine import machine_record
from transferkit.core.run_files import check_finished_run
from transferkit.data import LabelMap
from transferkit.evaluation import evaluate
from transferkit.experiments.card import model_card
from transferkit.experiments.context import Context
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.experiments.run_dir import RunDirectory
from transferkit.strategies import STRATEGIES
from transferkit.strategies.base import Strategy
from transferkit.tasks import TASKS
from transferkit.training import is_main_process, seed_everything, wait_for_everyone

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

    strategy: Strategy
    task_cls: type
    task_config: Any

    def resolved(self, config: RunConfig) -> dict[str, Any]:
        """The fully resolved config (every default written out) as saved in config.yaml."""
        raw = config.to_dict()
        raw["strategy"] = {"name": self.strategy.name, **self.strategy.options()}
        raw["task"] = {"name": self.task_cls.name, **dataclasses.asdict(self.task_config)}
        return raw


def components(config: RunConfig) -> Components:
    """Build strategy and task from the config; fails before any work on a bad name, option or missing source."""
    strategy_cls = STRATEGIES.get(config.strategy.name)
    strategy = strategy_cls(build_dataclass(strategy_cls.Config, config.strategy.options, "strategy"))
    task_cls = TASKS.get(config.task.name)
    task_config = strategy.resolve_task(build_dataclass(task_cls.Config, config.task.options, "task"))
    if task_cls.name not in strategy.supports:
        raise UserError(f"strategy '{strategy.name}' does not support task '{task_cls.name}' "
                        f"(it supports: {', '.join(sorted(strategy.supports))})")
    strategy.check(task_cls, config)
    test_configs(config.data.test)  # a malformed test-set entry fails here, before any work
    if config.init_from:
        check_start(config.init_from, config.model, task_cls.name)
    return Components(strategy, task_cls, task_config)


def check_start(run_dir: str, model_ref: str, task_name: str) -> None:
    """Before any work: ``init_from`` is a finished neural run of the same task, trained from ``model_ref``."""
    where = f"init_from {run_dir}"
    meta = check_finished_run(run_dir, task_name, where)
    if meta.get("source_model") != model_ref:
        raise UserError(f"{where}: that run was trained from model '{meta.get('source_model')}', this run loads "
                        f"'{model_ref}': set model: {meta.get('source_model')}")


def resolve_defaults(config: RunConfig, parts: Components) -> RunConfig:
    """The strategy's training and data defaults where the user left a value unset, and the task's selection
    metric."""
    training = parts.strategy.resolve_training(config.training)
    if training.metric_for_best is None:
        training = dataclasses.replace(training, metric_for_best=parts.task_cls.primary_metric)
    return dataclasses.replace(config, training=training, data=parts.strategy.resolve_data(config.data))


def train(config: RunConfig, resume: bool = False, cache: EmbeddingCache | None = None,
          callbacks: Sequence[Callback] = ()) -> RunResult:
    """Run one configuration end to end and write its run directory; returns its metrics.  ``callbacks`` join the
    Trainer of the method's main training stage (e.g. a tuner's per-epoch pruning)."""
    if not config.output:
        raise UserError("no output directory: pass --output DIR or set output in the config")
    parts = components(config)
    run = RunDirectory(config.output, resume, writer=is_main_process())  # launched processes: the main one writes
    run.check()
    parts.strategy.check_model(config.model)
    config = resolve_defaults(config, parts)
    splits = parts.task_cls.read_splits(config.data, parts.task_config, config.training.seed)
    task = parts.task_cls(parts.task_config, splits.labels)
    resolved = parts.resolved(config)
    with run:
        logger.info("run %s: %s on %s, %d train / %d eval examples", run.output, parts.strategy.name, config.model,
                    len(splits.train), len(splits.eval))
        ctx = Context(config, task, splits, run.work, run.checkpoint_dir, resume, cache or EmbeddingCache(), callbacks)
        started = time.perf_counter()
        seed_everything(config.training.seed)
        fitted = parts.strategy.fit(ctx)
        metrics = _metrics(fitted, task, splits, time.perf_counter() - started, config.training.mixed_precision)
        history = fitted.fit.history if fitted.fit else []
        if run.writer:
            _write(run, fitted, task, splits, resolved, metrics, history)
        wait_for_everyone()  # no process may still be at work when the main one renames the run directory
    return RunResult(run.output, metrics, resolved, history)


def _write(run: RunDirectory, fitted: Fitted, task: Any, splits: Splits, resolved: dict[str, Any],
           metrics: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """The run directory's files: model/, config.yaml, metrics.json, history.json, card.md."""
    fitted.predictor.save(run.path("model"))
    LabelMap(splits.labels).save(run.path("model/labels.json"))
    summary = {"train_size": len(splits.train), "eval_size": len(splits.eval), "labels": splits.labels,
               "test_sizes": {name: len(examples) for name, examples in splits.tests.items()},
               **task.data_summary(splits.train)}
    run.write_yaml("config.yaml", resolved)
    run.write_json("metrics.json", metrics)
    run.write_json("history.json", history)
    run.write_text("card.md", model_card(resolved, metrics, summary, fitted.no_source_model))


def _metrics(fitted: Fitted, task: Any, splits: Splits, train_seconds: float, precision: str) -> dict[str, Any]:
    """Eval and every test set's metrics (with CIs), which split selection used, costs."""
    started = time.perf_counter()
    fit, predictor = fitted.fit, fitted.predictor
    score = fitted.evaluate or (lambda name, examples: evaluate(predictor, task, examples))  # name: None = eval
    metrics: dict[str, Any] = {"eval": score(None, splits.eval)}
    if splits.tests:
        metrics["test"] = {name: score(name, examples) for name, examples in splits.tests.items()}
    # The split best-checkpoint restore chose on (per-epoch evaluation): its figures are optimistic.
    metrics["selected_on"] = "eval" if fit is not None and fit.best_step is not None else None
    if fitted.info:
        metrics["encoder"] = fitted.info
    extra = fitted.extra_metrics() if fitted.extra_metrics is not None else {}  # e.g. a multi-task run's other tasks
    metrics.update({
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - started,
        "train_size": len(splits.train),
        "steps": fit.steps if fit else 0,
        "best_step": fit.best_step if fit else None,
        "trainable_parameters": fitted.parameters[0],
        "total_parameters": fitted.parameters[1],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": machine_record(precision),
    })
    metrics.update(extra)
    return metrics
