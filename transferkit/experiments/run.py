"""The composition root: the only place that wires the layers together for one run.

config -> checks (names, options, required sources, the model) -> task.read_splits (+ named
sources) -> task.build_model -> strategy.prepare -> fit (Trainer on the strategy's batch
source, a closed-form head, or a classical fit) -> evaluate on eval and every test set ->
run directory.  Everything task- or strategy-specific happens behind their hooks.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from transferkit.core.config import (
    DataConfig,
    RunConfig,
    SourceConfig,
    build_dataclass,
    source_configs,
    test_configs,
)
from transferkit.core.contracts import Predictor, Splits
from transferkit.core.errors import UserError
from transferkit.core.machine import machine_record
from transferkit.data import LabelMap
from transferkit.evaluation import evaluate
from transferkit.experiments.card import model_card
from transferkit.experiments.distillation import Teacher, attach_teacher, check_teacher, load_teacher
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.experiments.frozen import fit_frozen, fit_head_after_training
from transferkit.experiments.init_from import check_start, initialise_from
from transferkit.experiments.multitask import (
    TaskSource,
    final_task_metrics,
    per_task_metrics,
    read_task_sources,
    task_source_names,
)
from transferkit.experiments.pretraining import continue_pretraining
from transferkit.experiments.run_dir import RunDirectory
from transferkit.modules import count_parameters
from transferkit.serving import NeuralPredictor
from transferkit.serving.encoder_predictor import EncoderPredictor
from transferkit.serving.predictor import base_reference
from transferkit.strategies import STRATEGIES
from transferkit.strategies.base import Strategy
from transferkit.tasks import TASKS
from transferkit.training import FitResult, Trainer, seed_everything

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


@dataclass
class Fitted:
    """What fitting produced: the predictor, the Trainer's history (if it ran), parameter counts, source facts."""

    predictor: Predictor
    fit: FitResult | None
    parameters: tuple[int, int]
    source_info: dict[str, Any]


def components(config: RunConfig) -> Components:
    """Build strategy and task from the config; fails before any work on a bad name, option or missing source."""
    strategy_cls = STRATEGIES.get(config.strategy.name)
    strategy = strategy_cls(build_dataclass(strategy_cls.Config, config.strategy.options, "strategy"))
    task_cls = TASKS.get(config.task.name)
    task_config = strategy.resolve_task(build_dataclass(task_cls.Config, config.task.options, "task"))
    if task_cls.name not in strategy.supports:
        raise UserError(f"strategy '{strategy.name}' does not support task '{task_cls.name}' "
                        f"(it supports: {', '.join(sorted(strategy.supports))})")
    strategy.check_task(task_cls)
    specs = source_configs(config.data.sources)
    strategy.check_sources(list(specs))
    if strategy.multi_task:
        names = task_source_names(specs)
        plain = sorted(set(specs) - set(names))
        if plain:
            raise UserError(f"data.sources.{plain[0]}: strategy '{strategy.name}' trains tasks; give the source a task "
                            f"and its labels (data.sources.{plain[0]}.task=classification, .label_column=COLUMN)")
        strategy.check_tasks(names)
    test_configs(config.data.test)  # a malformed test-set entry fails here, before any work
    if config.init_from:
        check_start(config.init_from, config.model, task_cls.name, strategy)
    _check_teacher(config, strategy, task_cls.name)
    return Components(strategy, task_cls, task_config)


def _check_teacher(config: RunConfig, strategy: Strategy, task_name: str) -> None:
    """A strategy that learns from a teacher has one (a finished run of the task); no other strategy is given one."""
    if strategy.teacher_outputs() and not config.teacher:
        raise UserError(f"strategy '{strategy.name}' learns from a teacher: set teacher: RUN_DIR "
                        "(a finished run of the same task, e.g. --set teacher=runs/finetune)")
    if config.teacher and not strategy.teacher_outputs():
        raise UserError(f"teacher {config.teacher}: strategy '{strategy.name}' learns from no teacher (use distill)")
    if config.teacher:
        check_teacher(config.teacher, task_name)


def resolve_defaults(config: RunConfig, parts: Components) -> RunConfig:
    """The strategy's training and data defaults where the user left a value unset, and the task's selection
    metric."""
    training = parts.strategy.resolve_training(config.training)
    if training.metric_for_best is None:
        training = dataclasses.replace(training, metric_for_best=parts.task_cls.primary_metric)
    return dataclasses.replace(config, training=training, data=parts.strategy.resolve_data(config.data))


def train(config: RunConfig, resume: bool = False, cache: EmbeddingCache | None = None) -> RunResult:
    """Run one configuration end to end and write its run directory; returns its metrics."""
    if not config.output:
        raise UserError("no output directory: pass --output DIR or set output in the config")
    parts = components(config)
    run = RunDirectory(config.output, resume)
    run.check()
    if parts.strategy.source_kind != "none":
        parts.strategy.check_source(config.model)
    config = resolve_defaults(config, parts)
    splits = parts.task_cls.read_splits(config.data, parts.task_config, config.training.seed)
    task = parts.task_cls(parts.task_config, splits.labels)
    specs = source_configs(config.data.sources)
    tasks = read_task_sources(specs, config.data, config.training.seed) if parts.strategy.multi_task else {}
    sources = read_sources({name: spec for name, spec in specs.items() if name not in tasks}, task, config.data)
    resolved = parts.resolved(config)
    with run:
        logger.info("run %s: %s on %s, %d train / %d eval examples%s%s", run.output, parts.strategy.name, config.model,
                    len(splits.train), len(splits.eval), "".join(f", {len(v)} {k}" for k, v in sources.items()),
                    "".join(f", task {k}: {len(v.splits.train)} train" for k, v in tasks.items()))
        started = time.perf_counter()
        fitted = fit_predictor(config, parts.strategy, task, splits, sources, run.checkpoint_dir, resume,
                               cache or EmbeddingCache(), tasks)
        metrics = _metrics(fitted, task, splits, time.perf_counter() - started, config.training.mixed_precision)
        if tasks:  # multi-task: every other task on its own held-out split, through the model's head for it
            metrics["tasks"] = final_task_metrics(fitted.predictor, tasks)
        fitted.predictor.save(run.path("model"))
        LabelMap(splits.labels).save(run.path("model/labels.json"))
        summary = {"train_size": len(splits.train), "eval_size": len(splits.eval), "labels": splits.labels,
                   "test_sizes": {name: len(examples) for name, examples in splits.tests.items()},
                   **task.data_summary(splits.train)}
        history = fitted.fit.history if fitted.fit else []
        run.write_yaml("config.yaml", resolved)
        run.write_json("metrics.json", metrics)
        run.write_json("history.json", history)
        run.write_text("card.md", model_card(resolved, metrics, summary))
    return RunResult(run.output, metrics, resolved, history)


def read_sources(specs: dict[str, SourceConfig], task: Any, data: DataConfig) -> dict[str, Any]:
    """Named extra data, read by the run's task with the source's own columns (text-only without a label column)."""
    sources = {}
    for name, spec in specs.items():
        if spec.task is not None and spec.task != task.name:
            raise UserError(f"data.sources.{name}: task '{spec.task}' is not the run's task '{task.name}'; "
                            "sources of other tasks need a multi-task strategy")
        columns = {"text_column": spec.text_column or data.text_column,
                   "text_pair_column": spec.text_pair_column or data.text_pair_column,
                   "label_column": spec.label_column or data.label_column, "format": spec.format,
                   "columns": spec.columns or data.columns}
        sources[name] = task.read(spec.path, dataclasses.replace(data, **columns),
                                  require_targets=spec.label_column is not None)
        if not len(sources[name]):
            raise UserError(f"data.sources.{name}: {spec.path} holds no examples")
    return sources


def _metrics(fitted: Fitted, task: Any, splits: Splits, train_seconds: float, precision: str) -> dict[str, Any]:
    """Eval and every test set's metrics (with CIs), which split selection used, costs."""
    started = time.perf_counter()
    fit, predictor = fitted.fit, fitted.predictor
    metrics: dict[str, Any] = {"eval": evaluate(predictor, task, splits.eval)}
    if splits.tests:
        metrics["test"] = {name: evaluate(predictor, task, examples) for name, examples in splits.tests.items()}
    # The split best-checkpoint restore chose on (per-epoch evaluation): its figures are optimistic.
    metrics["selected_on"] = "eval" if fit is not None and fit.best_step is not None else None
    if fitted.source_info:
        metrics["encoder"] = fitted.source_info
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
    return metrics


def fit_predictor(config: RunConfig, strategy: Strategy, task: Any, splits: Splits, sources: dict[str, Any],
                  checkpoint_dir: str, resume: bool, cache: EmbeddingCache,
                  tasks: dict[str, TaskSource] | None = None) -> Fitted:
    """Fit according to the strategy's kind: classical, frozen encoder, or the Trainer on a batch source."""
    seed_everything(config.training.seed)
    if strategy.kind == "classical":
        predictor = strategy.fit(splits.train, task.labels, config.training.seed)
        size = predictor.parameter_count()
        return Fitted(predictor, None, (size, size), {})
    teacher = load_teacher(config.teacher, task.labels) if config.teacher else None
    tasks = tasks or {}
    loaded, model, meta, fingerprint = _build_model(config, strategy, task, splits, sources, teacher, tasks)
    if loaded.encoder is not None:  # a frozen text encoder maps texts to vectors itself: no tokenizer
        predictor = EncoderPredictor(model, loaded.encoder, meta, config.training.eval_batch_size)
    else:
        predictor = NeuralPredictor(model, loaded.tokenizer, config.data.max_length, meta,
                                    config.training.eval_batch_size)
    for where, examples in _named_data(config.data, splits):
        predictor.check_inputs(examples, where)
    parameters = count_parameters(model)
    trainer = Trainer(strategy, config.training, checkpoint_dir=checkpoint_dir)
    if strategy.kind == "frozen":
        fit = fit_frozen(config, strategy, predictor, splits, trainer, resume, cache, fingerprint)
    else:
        fit = _fit_neural(config, strategy, predictor, splits, sources, tasks, trainer, teacher, cache, resume)
    if strategy.saves_delta and config.init_from:  # saved as full weights: fold the delta in
        strategy.merge(model)
    model.eval()
    return Fitted(predictor, fit, parameters, loaded.info)


def _fit_neural(config: RunConfig, strategy: Strategy, predictor: NeuralPredictor, splits: Splits,
                sources: dict[str, Any], tasks: dict[str, TaskSource], trainer: Trainer, teacher: Teacher | None,
                cache: EmbeddingCache, resume: bool) -> FitResult:
    """The Trainer on the strategy's batch source over the featurised training data, sources and tasks."""
    eval_features = predictor.featurize(splits.eval)
    features = {"train": predictor.featurize(splits.train),
                **{name: predictor.featurize(examples) for name, examples in sources.items()}}
    tokenizer, max_length = predictor.tokenizer, config.data.max_length
    features.update({name: t.task.featurize(t.splits.train, tokenizer, max_length) for name, t in tasks.items()})
    task_eval = {name: t.task.featurize(t.splits.eval, tokenizer, max_length) for name, t in tasks.items()}
    if teacher is not None:  # distillation: the teacher's outputs on every training row, computed once
        for name, examples in {"train": splits.train, **sources}.items():
            attach_teacher(teacher, strategy.teacher_outputs(), examples, features[name], tokenizer, cache)

    def evaluate_model(model: Any) -> dict[str, Any]:
        metrics = predictor.metrics_on(model, eval_features, splits.eval)
        return {**metrics, **per_task_metrics(predictor, model, tasks, task_eval)} if tasks else metrics

    batches = strategy.batch_source(features, predictor.collator, config.training)
    # a head fitted only after training scores nothing meaningful during it: no evaluation, no checkpoint selection
    evaluate_during = None if strategy.head_after_training else evaluate_model
    fit = trainer.fit(predictor.model, batches, evaluate_during, resume=resume)
    if strategy.head_after_training:  # contrastive / prototypical: the encoder trained, now the head in closed form
        fit_head_after_training(strategy, predictor, splits, config.training.seed)
    return fit


def _build_model(config: RunConfig, strategy: Strategy, task: Any, splits: Splits, sources: dict[str, Any],
                 teacher: Teacher | None = None, tasks: dict[str, TaskSource] | None = None
                 ) -> tuple[Any, Any, dict, str]:
    """(loaded source, prepared task model, saved-model meta, weights fingerprint for the embedding cache)."""
    loaded = strategy.load_source(config.model, splits.train, seq2seq=task.generative)
    plan = strategy.pretraining()
    if plan is not None:  # DAPT/TAPT: continued masked-LM pretraining of the source encoder first
        corpus = splits.train if plan.corpus == "train" else sources[plan.corpus]
        loaded = continue_pretraining(loaded, task.input_texts(corpus), plan, config.training, config.data.max_length,
                                      config.output)
    model = task.build_model(loaded, strategy.mlp_hidden)
    for name, source in (tasks or {}).items():  # multi-task: a head per extra task on the shared encoder
        model.add_head(source.task, strategy.mlp_hidden, name=name)
    meta = {"task": task.name, "task_options": dataclasses.asdict(task.config), "strategy": strategy.name,
            "source_model": config.model, "mlp_hidden": strategy.mlp_hidden, "precision": config.training.mixed_precision,
            # word vectors report their own coverage; a subword tokenizer's [UNK] rate is checked here
            "unk_warning": config.data.unk_warning if strategy.source_kind == "transformer" else 0.0}
    if tasks:
        meta["heads"] = {name: source.head_meta() for name, source in tasks.items()}
    fingerprint = loaded.fingerprint
    if config.init_from:  # sequential transfer: the source run's weights, then the strategy's structure
        start = initialise_from(model, config.init_from, task)
        meta["init_from"] = start.describe()
        fingerprint = f"{fingerprint}+{start.fingerprint}"
    if teacher is not None:
        meta["teacher"] = {"run": teacher.run, "fingerprint": teacher.fingerprint,
                           "student_init": strategy.init_from_teacher(model, teacher.model) or "pretrained model"}
    model = strategy.prepare(model)
    if loaded.info:
        meta["encoder"] = loaded.info
    if strategy.saves_delta and not config.init_from:  # a delta on the source run would need that run to load
        meta["base_model"] = base_reference(config.model, loaded.fingerprint)
        meta["strategy_options"] = strategy.options()
    return loaded, model, meta, fingerprint


def _named_data(data: DataConfig, splits: Splits) -> list[tuple[str, Any]]:
    """The data sets a run reads from files, named as in the config: train, eval (if a file), each test set."""
    named = [("data.train", splits.train), *([("data.eval", splits.eval)] if data.eval else [])]
    tests = data.test if isinstance(data.test, dict) else {}
    return named + [(f"data.test.{name}" if name in tests else "data.test", examples)
                    for name, examples in splits.tests.items()]
