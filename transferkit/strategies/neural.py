"""``NeuralStrategy``: the plan of every strategy that trains a task model through the one Trainer.

    fit(ctx):  loaded = source_model(ctx)            the pretrained (or re-initialised) encoder
               built  = build(ctx, loaded)            task head(s) -> init_from's weights -> prepare -> predictor
               fit    = train(ctx, built, features)   Trainer(self) on batch_source(features), per-epoch evaluation
               return finish(ctx, built, fit)

A strategy is the Trainer's objective (``core.contracts.Objective``): ``param_groups`` (what trains, at
which rate; frozen parameters carry no optimizer state), ``loss`` and ``callbacks``; ``prepare`` freezes,
injects adapters or adds training-only modules; ``batch_source`` decides what one step sees (the training
rows alone by default; zipped with target text, mixed across tasks, pairs or episodes elsewhere).
Methods with stages override ``fit`` (or ``source_model``) and compose these steps in their own order:
continued pretraining runs inside ``source_model``, distillation loads its teacher first and adds its
outputs to the features, multi-task adds heads between ``task_model`` and ``start_from``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from transferkit.core.contracts import Batch, Callback, Fitted, Losses, RunContext
from transferkit.data.sources import SingleSource
from transferkit.models.loading import LoadedModel, base_reference, load_backbone
from transferkit.modules import count_parameters
from transferkit.strategies.base import Strategy
from transferkit.strategies.common import body_and_head_groups


@dataclass
class Draft:
    """A task model before ``prepare``: its saved-model ``meta`` so far, the fingerprint of the weights it starts
    from (the source's, + ``init_from``'s run), and whether it started from a finished run."""

    model: Any
    meta: dict[str, Any]
    fingerprint: str
    started_from_run: bool


@dataclass
class Built:
    """The prepared task model of a run and the predictor the run saves."""

    loaded: LoadedModel
    model: Any
    predictor: Any
    parameters: tuple[int, int]
    fingerprint: str
    started_from_run: bool


class NeuralStrategy(Strategy):
    """A strategy whose plan trains a task model with the Trainer; it is the Trainer's objective."""

    random_init: ClassVar[bool] = False
    """Re-initialise the source's weights (the ``scratch`` baseline)."""

    # ---- the plan ------------------------------------------------------------------------------
    def fit(self, ctx: RunContext) -> Fitted:
        built = self.build(ctx, self.source_model(ctx))
        evaluate = self.evaluator(ctx, built)
        fit = self.train(ctx, built, self.features(ctx, built), evaluate)
        return self.finish(ctx, built, fit)

    def source_model(self, ctx: RunContext) -> LoadedModel:
        """The source model this run adapts (continued pretraining adapts it here first)."""
        return self.load_source(ctx.config.model, ctx.splits.train, seq2seq=ctx.task.generative)

    def load_source(self, model_ref: str, train: Any, seq2seq: bool = False) -> LoadedModel:
        """The pretrained (or, for ``random_init``, re-initialised) transformer; ``seq2seq`` asks for the whole
        encoder-decoder LM when the checkpoint is one."""
        return load_backbone(model_ref, random_init=self.random_init, seq2seq=seq2seq)

    def build(self, ctx: RunContext, loaded: LoadedModel) -> Built:
        """``task_model`` -> ``start_from`` -> ``complete``."""
        model, meta = self.task_model(ctx, loaded)
        return self.complete(ctx, loaded, self.start_from(ctx, model, meta, loaded))

    def task_model(self, ctx: RunContext, loaded: LoadedModel) -> tuple[Any, dict[str, Any]]:
        """The task's model on ``loaded`` with a head of ``mlp_hidden`` units, and what ``transferkit.json`` records."""
        model = ctx.task.build_model(loaded, self.mlp_hidden)
        c = ctx.config
        meta = {"task": ctx.task.name, "task_options": dataclasses.asdict(ctx.task.config), "strategy": self.name,
                "source_model": c.model, "mlp_hidden": self.mlp_hidden, "precision": c.training.mixed_precision,
                "unk_warning": c.data.unk_warning}  # the share of [UNK] tokens above which inputs draw a warning
        return model, meta

    def start_from(self, ctx: RunContext, model: Any, meta: dict[str, Any], loaded: LoadedModel) -> Draft:
        """``init_from``'s trained weights copied in (sequential transfer), when the run sets one."""
        start = ctx.start_from_run(model)
        if start is None:
            return Draft(model, meta, loaded.fingerprint, False)
        meta["init_from"] = start[0]
        return Draft(model, meta, f"{loaded.fingerprint}+{start[1]}", True)

    def complete(self, ctx: RunContext, loaded: LoadedModel, draft: Draft) -> Built:
        """``prepare`` the model, record the source's facts, build the predictor the run saves."""
        model = self.prepare(draft.model)
        meta = draft.meta
        if loaded.info:
            meta["encoder"] = loaded.info
        meta = self.saved_meta(ctx, meta, loaded, draft.started_from_run)
        predictor = ctx.predictor(model, loaded, meta)
        return Built(loaded, model, predictor, count_parameters(model), draft.fingerprint, draft.started_from_run)

    def saved_meta(self, ctx: RunContext, meta: dict[str, Any], loaded: LoadedModel,
                   started_from_run: bool) -> dict[str, Any]:
        """What ``transferkit.json`` records beyond the common fields (a delta's base model)."""
        return meta

    def features(self, ctx: RunContext, built: Built) -> dict[str, list[dict[str, Any]]]:
        """The featurised training rows (``train``) and every data source of the run (by its name)."""
        featurize = built.predictor.featurize
        return {"train": featurize(ctx.splits.train), **{name: featurize(rows) for name, rows in ctx.sources().items()}}

    def evaluator(self, ctx: RunContext, built: Built) -> Callable[[Any], dict[str, Any]] | None:
        """Per-epoch evaluation on the eval split (None = none: the last step is kept)."""
        eval_features = built.predictor.featurize(ctx.splits.eval)
        return lambda model: built.predictor.metrics_on(model, eval_features, ctx.splits.eval)

    def train(self, ctx: RunContext, built: Built, features: dict[str, list[dict[str, Any]]],
              evaluate: Callable[[Any], dict[str, Any]] | None) -> Any:
        """The Trainer, with this strategy as its objective, on ``batch_source(features)``."""
        batches = self.batch_source(features, built.predictor.collator, ctx.config.training)
        return ctx.train(self, built.model, batches, evaluate)

    def finish(self, ctx: RunContext, built: Built, fit: Any) -> Fitted:
        """The trained model in eval mode, as the run evaluates and saves it."""
        built.model.eval()
        return Fitted(built.predictor, fit, built.parameters, built.loaded.info)

    # ---- the model -----------------------------------------------------------------------------
    @property
    def mlp_hidden(self) -> int:
        """Hidden units of the task head (0 = a linear head)."""
        return 0

    def prepare(self, model: nn.Module) -> nn.Module:
        """Freeze / inject adapters / add auxiliary modules; returns the model to train."""
        return model

    # ---- the Trainer's objective ---------------------------------------------------------------
    def param_groups(self, model: nn.Module, learning_rate: float, head_learning_rate: float,
                     weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups of what trains; frozen parameters must not appear (no optimizer state)."""
        return body_and_head_groups(model, learning_rate, head_learning_rate, weight_decay)

    def batch_source(self, features: dict[str, list[dict[str, Any]]], collator: Callable, config: Any) -> Any:
        """What the Trainer iterates: by default the training features alone (``features["train"]``).

        ``features`` also holds every named data source (``data.sources.NAME``), featurised;
        a strategy that trains on several zips or mixes them (``data.sources``' classes).
        """
        return SingleSource.from_config(features["train"], collator, config)

    def loss(self, model: nn.Module, batch: Batch) -> Losses:
        """The task's own loss on the model's outputs (what most strategies minimise)."""
        loss = model.task.loss(model(batch), batch)
        return Losses(total=loss, parts={"task": float(loss.detach())})

    def callbacks(self) -> list[Callback]:
        """Training-time behaviour (e.g. gradual unfreezing)."""
        return []


class DeltaStrategy(NeuralStrategy):
    """A frozen base plus a small trained delta (LoRA, BitFit): the run saves only the delta and a reference to the
    base model; ``serving`` rebuilds the model with ``prepare`` on the base and folds the delta with ``merge``.  A run
    that starts from a finished run (``init_from``) saves full weights instead: its delta is merged at the end."""

    def merge(self, model: nn.Module) -> nn.Module:
        """Fold the trained delta into full weights (e.g. ``W = W₀ + BA``)."""
        return model

    def saved_meta(self, ctx: RunContext, meta: dict[str, Any], loaded: LoadedModel,
                   started_from_run: bool) -> dict[str, Any]:
        if started_from_run:  # a delta on the source run would need that run to load: saved as full weights
            return meta
        return {**meta, "base_model": base_reference(ctx.config.model, loaded.fingerprint),
                "strategy_options": self.options()}

    def finish(self, ctx: RunContext, built: Built, fit: Any) -> Fitted:
        if built.started_from_run:
            self.merge(built.model)
        return super().finish(ctx, built, fit)
