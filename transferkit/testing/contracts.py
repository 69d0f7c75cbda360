"""``check_strategy`` and ``check_task``: the contracts, runnable by third parties.

Like scikit-learn's ``check_estimator``: each rule is one named check whose failure message
states the rule; ``strategy_checks`` / ``task_checks`` list them (a test suite can
parametrize over them), ``check_strategy`` / ``check_task`` run them all.  The checks of a
``NeuralStrategy`` (the Trainer's objective) prepare a tiny model and train a few steps through the
shared Trainer; any other strategy runs its own ``fit`` over an in-memory run context.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from transferkit.core.config import DataConfig, TrainingConfig
from transferkit.core.contracts import Fitted, InputForm, Losses
from transferkit.core.errors import UserError
from transferkit.data.collate import PaddingCollator
from transferkit.models.loading import load_backbone
from transferkit.strategies.base import Strategy
from transferkit.strategies.neural import NeuralStrategy
from transferkit.testing.memory_context import MemoryContext
from transferkit.training.trainer import Trainer, seed_everything


def source_model_for(strategy_cls: type, transformer_model: str, vectors: str) -> str:
    """The source a strategy's contract runs on: ``transformer_model`` (a tiny BERT directory) when the strategy's
    ``check_model`` accepts it, else ``vectors`` (e.g. ``word_vectors`` needs static word vectors)."""
    try:
        strategy_cls(strategy_cls.Config()).check_model(transformer_model)
    except UserError:
        return vectors
    return transformer_model


def _fail(rule: str, detail: str = "") -> None:
    raise AssertionError(rule + (f" ({detail})" if detail else ""))


def _config_checks(cls: type) -> None:
    if not dataclasses.is_dataclass(cls.Config):
        _fail(f"{cls.name}: Config must be a dataclass")
    for item in dataclasses.fields(cls.Config):
        if not item.metadata.get("help"):
            _fail(f"{cls.name}: every Config field has help text", item.name)


# ---- strategies -------------------------------------------------------------------------------
@dataclass
class StrategyCase:
    """A strategy on a tiny model with a task and its training examples (built once, shared by the checks)."""

    strategy_cls: type
    task: Any
    model_dir: str
    train: Any
    observed: dict[str, Any] = field(default_factory=dict)


def check_declares_contract(case: StrategyCase) -> None:
    """The class attributes the code reads are set and valid, and the strategy has a plan (``fit``)."""
    cls = case.strategy_cls
    if not (isinstance(cls.name, str) and cls.name):
        _fail("a strategy has a non-empty name")
    if not issubclass(cls, Strategy) or cls.fit is Strategy.fit:
        _fail("a strategy subclasses strategies.base.Strategy and defines fit(ctx)")
    if not isinstance(cls.supports, frozenset) or not isinstance(cls.requires, frozenset):
        _fail("supports and requires are frozensets of names")
    if not isinstance(cls.uses_source_model, bool):
        _fail("uses_source_model is a bool")
    unknown = set(cls.training_defaults) - {f.name for f in dataclasses.fields(TrainingConfig)}
    if unknown:
        _fail("training_defaults name training settings", ", ".join(sorted(unknown)))
    unknown = set(cls.data_defaults) - {f.name for f in dataclasses.fields(DataConfig)}
    if unknown:
        _fail("data_defaults name data settings", ", ".join(sorted(unknown)))
    _config_checks(cls)


def check_constructor_only_stores(case: StrategyCase) -> None:
    """The constructor stores the config and does nothing else (so strategies clone onto grids)."""
    strategy = case.strategy_cls(case.strategy_cls.Config())
    if dataclasses.asdict(strategy.config) != dataclasses.asdict(case.strategy_cls.Config()):
        _fail("the constructor must only store its config")


def _prepared(case: StrategyCase) -> tuple[Any, Any, Any]:
    if "model" not in case.observed:
        seed_everything(0)
        strategy = case.strategy_cls(case.strategy_cls.Config())
        loaded = strategy.load_source(case.model_dir, case.train, seq2seq=case.task.generative)
        case.observed.update(strategy=strategy, loaded=loaded,
                             model=strategy.prepare(case.task.build_model(loaded, strategy.mlp_hidden)))
    return case.observed["strategy"], case.observed["loaded"], case.observed["model"]


def _source_features(case: StrategyCase, loaded: Any) -> dict[str, list[dict[str, Any]]]:
    """Featurised training data, plus every data source the strategy ``requires`` (the training examples
    in reverse order, without labels: stand-ins for e.g. unlabelled target text).  Every row also carries
    stand-in teacher outputs (seeded random logits of the right shape), which a strategy that distils reads
    and every other ignores."""
    features = case.task.featurize(case.train, loaded.tokenizer, 64)
    generator = np.random.default_rng(0)
    for row in features:
        shape = () if case.task.feature_kind == "pooled" else (len(row["input_ids"]),)
        row["teacher_logits"] = generator.normal(size=(*shape, len(case.task.labels))).astype(np.float32)
    unlabelled = [{k: v for k, v in row.items() if k != "labels"} for row in reversed(features)]
    return {"train": features, **{name: unlabelled for name in sorted(case.strategy_cls.requires)}}


def check_frozen_parameters_have_no_optimizer_state(case: StrategyCase) -> None:
    """param_groups returns parameters, and none that does not train (strategies that train through the Trainer)."""
    if not issubclass(case.strategy_cls, NeuralStrategy):
        return
    strategy, _, model = _prepared(case)
    groups = strategy.param_groups(model, 1e-3, 1e-3, 0.01)
    in_optimizer = {id(p) for group in groups for p in group["params"]}
    if not in_optimizer:
        _fail("param_groups returns at least one parameter")
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad and id(p) in in_optimizer]
    if frozen:
        _fail("frozen parameters carry no optimizer state", ", ".join(frozen[:3]))


def check_loss_is_finite_and_differentiable(case: StrategyCase) -> None:
    """loss() returns Losses whose total is a finite tensor with a gradient."""
    if not issubclass(case.strategy_cls, NeuralStrategy):
        return
    strategy, loaded, model = _prepared(case)
    config = strategy.resolve_training(TrainingConfig(batch_size=8, progress=False, checkpoint_every=0))
    batches = strategy.batch_source(_source_features(case, loaded), PaddingCollator(loaded.tokenizer.pad_token_id), config)
    losses = strategy.loss(model, next(iter(batches)))
    if not (isinstance(losses, Losses) and torch.isfinite(losses.total) and losses.total.requires_grad):
        _fail("loss() returns Losses with a finite, differentiable total")


def check_training_changes_only_trainable_parameters(case: StrategyCase) -> None:
    """A short fit through the shared Trainer changes some parameter and no frozen one; outputs fit the task."""
    if not issubclass(case.strategy_cls, NeuralStrategy):  # its own plan, through an in-memory run context
        strategy = case.strategy_cls(case.strategy_cls.Config())
        seed_everything(0)
        fitted = strategy.fit(MemoryContext.for_examples(case.task, case.train, case.model_dir, strategy))
        if not isinstance(fitted, Fitted):
            _fail("fit(ctx) returns core.contracts.Fitted")
        if (fitted.no_source_model is None) != strategy.uses_source_model:
            _fail("uses_source_model is False exactly when fit reports Fitted.no_source_model (it read no model)")
        outputs = fitted.predictor.predict(case.train)
        if len(case.task.present(outputs)) != len(case.train):
            _fail("the fitted predictor gives one prediction per example")
        case.observed["outputs"] = outputs
        return
    strategy, loaded, model = _prepared(case)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    features = case.task.featurize(case.train, loaded.tokenizer, 64)
    collator = PaddingCollator(loaded.tokenizer.pad_token_id)
    config = strategy.resolve_training(TrainingConfig(epochs=1, batch_size=8, learning_rate=1e-3, progress=False,
                                                      checkpoint_every=0))
    Trainer(strategy, config).fit(model, strategy.batch_source(_source_features(case, loaded), collator, config))
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    if not changed:
        _fail("training changes at least one parameter")
    if changed & frozen:
        _fail("training changes no frozen parameter", ", ".join(sorted(changed & frozen)[:3]))
    outputs = case.task.infer(model, features, collator, 32)
    if len(outputs) != len(features):
        _fail("the task's inference gives one output per feature", f"{len(outputs)} for {len(features)}")
    case.observed.update(changed=changed, frozen=frozen, outputs=outputs)


STRATEGY_CHECKS: list[Callable[[StrategyCase], None]] = [
    check_declares_contract, check_constructor_only_stores, check_frozen_parameters_have_no_optimizer_state,
    check_loss_is_finite_and_differentiable, check_training_changes_only_trainable_parameters,
]


def check_strategy(strategy_cls: type, task: Any, model_dir: str, train: Any) -> dict[str, Any]:
    """Run every strategy check on a tiny source model; returns what was observed (for tests to inspect).

    ``model_dir`` is the source: a tiny transformer directory, or a small word-vectors file for a
    strategy whose ``check_model`` refuses a transformer (see :func:`source_model_for`).
    """
    case = StrategyCase(strategy_cls, task, model_dir, train)
    for check in STRATEGY_CHECKS:
        check(case)
    return case.observed


# ---- tasks ------------------------------------------------------------------------------------
@dataclass
class TaskCase:
    """A task with a tiny transformer and its data config (train/eval files), shared by the checks."""

    task_cls: type
    model_dir: str
    data: DataConfig
    observed: dict[str, Any] = field(default_factory=dict)


def check_task_declares_contract(case: TaskCase) -> None:
    """Metrics, titles, budget unit and feature kind are declared; the primary metric is reported first."""
    cls = case.task_cls
    if not cls.report_metrics or cls.report_metrics[0] != cls.primary_metric:
        _fail("report_metrics starts with primary_metric", f"{cls.report_metrics} / {cls.primary_metric}")
    missing = [m for m in cls.report_metrics if m not in cls.metric_titles]
    if missing:
        _fail("every report metric has a title in metric_titles", ", ".join(missing))
    if cls.feature_kind not in ("pooled", "tokens", "none") or not isinstance(cls.generative, bool):
        _fail("feature_kind is pooled, tokens or none; generative is a bool")
    if not (isinstance(cls.budget_unit, str) and cls.budget_unit):
        _fail("budget_unit says what data.budget counts")
    if not cls.input_forms or not set(cls.input_forms) <= set(INPUT_SAMPLES):
        _fail("input_forms names the shapes from_inputs reads", f"{cls.input_forms}; known: {', '.join(INPUT_SAMPLES)}")
    _config_checks(cls)


def _task(case: TaskCase) -> Any:
    if "task" not in case.observed:
        splits = case.task_cls.read_splits(case.data, case.task_cls.Config(), 0)
        if not len(splits.train) or not len(splits.eval):
            _fail("read_splits gives non-empty train and eval sets")
        case.observed.update(splits=splits, task=case.task_cls(case.task_cls.Config(), splits.labels))
    return case.observed["task"]


def check_task_reads_and_featurizes(case: TaskCase) -> None:
    """read works with and without targets; featurize gives backbone inputs, with labels when targets were read."""
    task, splits = _task(case), case.observed["splits"]
    tokenizer = load_backbone(case.model_dir).tokenizer
    again = task.read(case.data.eval or case.data.train, case.data)
    unlabelled = task.read(case.data.eval or case.data.train, case.data, require_targets=False)
    if len(again) != len(unlabelled):
        _fail("read gives the same examples with or without targets")
    with_labels, without = task.featurize(again, tokenizer, 64), task.featurize(unlabelled, tokenizer, 64)
    if not with_labels or any("input_ids" not in f for f in with_labels):
        _fail("featurize gives features with input_ids")
    if not without or not all("labels" in f for f in with_labels):
        _fail("features carry labels when the examples were read with their targets")
    case.observed.update(tokenizer=tokenizer, eval=splits.eval)


def check_task_evaluates_and_writes(case: TaskCase) -> None:
    """A model built by the task gives a finite loss; decode -> evaluate reports every report metric and
    the primary metric's CI; write_predictions writes one record per example."""
    task, tokenizer = _task(case), case.observed.get("tokenizer") or load_backbone(case.model_dir).tokenizer
    seed_everything(0)
    model = task.build_model(load_backbone(case.model_dir, seq2seq=task.generative))
    examples = case.observed["splits"].eval
    features = task.featurize(examples, tokenizer, 64)
    collator = PaddingCollator(tokenizer.pad_token_id)
    loss = task.loss(model(collator(features[:4])), collator(features[:4]))
    if not torch.isfinite(loss):
        _fail("loss is finite on a fresh model")
    predictions = task.decode(task.infer(model, features, collator, 16), features, examples, tokenizer)
    metrics = task.evaluate(predictions, examples)
    missing = [m for m in task.report_metrics if m not in metrics]
    if missing or task.primary_metric not in (metrics.get("ci95") or {}):
        _fail("evaluate reports every report metric and ci95 of the primary one", ", ".join(missing))
    if len(task.present(predictions)) != len(examples):
        _fail("present gives one prediction per example")
    records = task.prediction_records(predictions, examples)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "predictions.jsonl")
        if task.write_predictions(path, predictions, examples) != len(examples) or not os.path.exists(path):
            _fail("write_predictions writes one record per example and returns the count")
        with open(path, encoding="utf-8") as handle:
            written = [json.loads(line) for line in handle]
    if written != json.loads(json.dumps(records)):
        _fail("write_predictions writes prediction_records (as JSON Lines), so predict and serve answer alike")
    case.observed.update(metrics=metrics)


def check_task_exposes_input_texts(case: TaskCase) -> None:
    """input_texts gives the non-empty strings the tokenizer reads, at least one per example (for the [UNK] check)."""
    task, examples = _task(case), case.observed["splits"].eval
    texts = task.input_texts(examples)
    if not isinstance(texts, list) or len(texts) < len(examples):
        _fail("input_texts gives a list with at least one text per example", f"{type(texts).__name__}")
    if not all(isinstance(text, str) and text.strip() for text in texts):
        _fail("input_texts gives non-empty strings")


INPUT_SAMPLES: dict[InputForm, Any] = {"text": "alice visited paris", "pair": ("alice visited paris", "bob stayed"),
                                       "tokens": ["alice", "visited", "paris"],
                                       "question_context": ("who visited paris?", "alice visited paris")}
"""One input of each shape ``from_inputs`` may read (``Task.input_forms``)."""


def check_task_reads_its_input_forms(case: TaskCase) -> None:
    """from_inputs reads two inputs of every shape in input_forms (what a served request brings) into two examples."""
    task = _task(case)
    for form in task.input_forms:
        examples = task.from_inputs([INPUT_SAMPLES[form]] * 2)
        if len(examples) != 2:
            _fail("from_inputs gives one example per input of every declared input form", form)


TASK_CHECKS: list[Callable[[TaskCase], None]] = [
    check_task_declares_contract, check_task_reads_and_featurizes, check_task_exposes_input_texts,
    check_task_reads_its_input_forms, check_task_evaluates_and_writes,
]


def check_task(task_cls: type, model_dir: str, data: DataConfig) -> dict[str, Any]:
    """Run every task check with a tiny transformer on ``data`` (train and eval files of the task's format)."""
    case = TaskCase(task_cls, model_dir, data)
    for check in TASK_CHECKS:
        check(case)
    return case.observed
