"""``Strategy``: the contract of every way of adapting a model.

The composition root (``experiments.run``), grids and the command line call exactly these hooks and
nothing else: ``check`` and ``check_model`` before any work; ``resolve_training`` / ``resolve_data`` /
``resolve_task``, which fill the strategy's defaults where the user left a value unset; ``fit(ctx)``,
which runs the method's whole plan over the run's services (``core.contracts.RunContext``) and returns
``Fitted``; ``options`` for config.yaml.  Everything else a method does (load its source, continued
pretraining, a teacher, several heads, a closed-form head, pairs or episodes) is its own code, in its own
module or package, so adding a method edits nothing outside ``strategies/``.  Like a scikit-learn
estimator, the constructor only stores the config, so strategies clone onto grids; a run's state lives
in ``fit``'s locals and return values, never on the strategy.

Families share their plan through base classes in this package: ``neural.NeuralStrategy`` (the Trainer
over a batch source; ``finetune`` and most others), ``neural.DeltaStrategy`` (LoRA, BitFit: a saved delta
that ``serving`` rebuilds with ``prepare`` and folds with ``merge``), ``encoder_then_head.EncoderThenHead``
(contrastive pairs, prototypical episodes, then a closed-form head); ``feature_extraction`` (a frozen
encoder, cached features) and ``tfidf`` (no pretrained model at all) run plans of their own.

``requires`` names the data sources (``data.sources.NAME``) a strategy cannot work without, e.g.
``{"target_unlabeled"}`` for domain adaptation: checked before any work.  ``training_defaults`` are
training settings the method needs to work at all (LoRA's learning rate is ~20x full fine-tuning's);
they apply unless the user sets the value; ``data_defaults`` likewise for data settings (contrastive
reads 256 tokens where the others read 128), ``task_defaults`` for task options.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar

from transferkit.core.config import TRAINING_DEFAULTS, fill_unset, source_configs
from transferkit.core.contracts import Fitted, RunContext
from transferkit.core.errors import UserError
from transferkit.models import check_weights, is_text_encoder, resolve


class Strategy:
    """How a pretrained model is adapted.  Subclasses set the class attributes, a ``Config`` dataclass and ``fit``."""

    name: ClassVar[str]
    supports: ClassVar[frozenset[str]]
    requires: ClassVar[frozenset[str]] = frozenset()
    learns_streams: ClassVar[bool] = False
    """Whether ``fit`` learns ``data.stream`` stage by stage (the continual strategies); every other strategy refuses a
    stream before any work."""
    uses_source_model: ClassVar[bool] = True
    """Whether ``fit`` reads the run's ``model`` (a pretrained source); False for a method that learns from the
    data alone (``tfidf``), whose runs ignore ``model`` and report ``Fitted.no_source_model``: a search over
    models (``advise``) then gives it one arm, not one per model."""
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 5e-5}
    data_defaults: ClassVar[dict[str, Any]] = {}
    """Data settings this strategy sets where the user left them null (``resolve_data``), e.g. ``max_length``."""
    task_defaults: ClassVar[dict[str, Any]] = {}
    """Task options this strategy sets where the user left them null and the task has them (e.g. contrastive's
    ``normalize: true``); resolved once (``resolve_task``), before the task is built, so the saved config holds it."""
    Config: ClassVar[type]

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.Config()

    # ---- before any work -------------------------------------------------------------------
    def check(self, task_cls: type, config: Any) -> None:
        """Fail (UserError) on what this strategy cannot do with the run ``config`` (a ``RunConfig``) for
        ``task_cls``: its options, the data sources it needs, a teacher it would not use.  ``supports`` was
        already checked."""
        self.check_task(task_cls)
        self.check_sources(config.data.sources, task_cls.name)
        if config.teacher:
            raise UserError(f"teacher {config.teacher}: strategy '{self.name}' learns from no teacher (use distill)")
        if config.data.stream and not self.learns_streams:
            raise UserError(f"data.stream: strategy '{self.name}' trains on data.train; a stream of stages needs a "
                            "continual strategy (sequential, joint, replay, ewc, lwf, adapters)")

    def check_task(self, task_cls: type) -> None:
        """The options can serve ``task_cls`` (a step of :meth:`check` that most strategies extend)."""

    def check_sources(self, sources: Any, task_name: str) -> None:
        """Every source in ``requires`` is given (one line naming what is missing), and every source is read by the
        run's own task (sources of other tasks need a multi-task strategy)."""
        specs = source_configs(sources)
        check_source_files(specs)
        missing = sorted(self.requires - set(specs))
        if missing:
            names = ", ".join(f"data.sources.{name}" for name in missing)
            raise UserError(f"strategy '{self.name}' needs {names}: add it to the config "
                            f"(e.g. --set data.sources.{missing[0]}=FILE)")
        for name, spec in specs.items():
            if spec.task is not None and spec.task != task_name:
                raise UserError(f"data.sources.{name}: task '{spec.task}' is not the run's task '{task_name}'; "
                                "sources of other tasks need a multi-task strategy")

    def check_model(self, model_ref: str) -> None:
        """Fail before any work on an unknown model, a directory without safe weights, or a frozen text
        encoder (nothing in it can be trained: only ``feature_extraction`` takes one)."""
        if is_text_encoder(model_ref):
            raise UserError(f"strategy '{self.name}' cannot train {str(model_ref).strip()} (a frozen text encoder): "
                            "use feature_extraction")
        resolved = resolve(model_ref)
        if resolved.is_local:
            check_weights(resolved.path_or_id)

    # ---- the plan ------------------------------------------------------------------------------
    def fit(self, ctx: RunContext) -> Fitted:
        """Run the method's plan over the run's services and return the predictor to evaluate and save."""
        raise NotImplementedError(f"strategy '{self.name}' defines no fit(ctx)")

    # ---- defaults and options ------------------------------------------------------------------
    def resolve_training(self, training: Any) -> Any:
        """``training`` with this strategy's ``training_defaults`` filled in where the user left a value unset (None)."""
        return fill_unset(training, {**TRAINING_DEFAULTS, **self.training_defaults})

    def resolve_data(self, data: Any) -> Any:
        """``data`` with this strategy's ``data_defaults`` filled in where the user left a value unset (None)."""
        return fill_unset(data, {"max_length": 128, **self.data_defaults})

    def resolve_task(self, task_config: Any) -> Any:
        """``task_config`` with this strategy's ``task_defaults`` where the task has the option and the user left it
        unset (None); options the task lacks are skipped (``normalize`` means nothing to NER)."""
        return fill_unset(task_config, self.task_defaults)

    def options(self) -> dict[str, Any]:
        """The validated options, as saved in config.yaml."""
        return dataclasses.asdict(self.config)


def check_source_files(specs: dict[str, Any]) -> None:
    """Every data source's file exists (``hf:`` datasets are read later), so a mistyped path fails before any work."""
    for name, spec in specs.items():
        path = os.path.expanduser(str(spec.path))
        if not path.startswith("hf:") and not os.path.exists(path):
            raise UserError(f"data.sources.{name}: {spec.path} not found")


PROTOCOL: frozenset[str] = frozenset({
    "name", "supports", "requires", "uses_source_model", "Config", "training_defaults", "data_defaults",
    "task_defaults", "config", "check", "check_model", "fit", "resolve_training", "resolve_data", "resolve_task",
    "options",
})
"""Every attribute of a strategy that code outside ``strategies/`` may read (``tests/test_architecture.py``
fails on any other read in ``experiments/``, ``serving/`` or ``cli/``); ``serving`` also calls a saved
delta's ``DeltaStrategy.prepare`` / ``merge``."""
