"""``Strategy``: the base class of every way of adapting a model, with a default for every hook.

The composition root (``experiments.run``), the Trainer, serving and the contract checks
call exactly these hooks and nothing else; a strategy overrides what it changes.  Like a
scikit-learn estimator, the constructor only stores the config, so strategies can be
cloned onto a grid.

``kind`` tells the composition root how to drive it:

* ``neural``: the Trainer optimises ``param_groups`` on ``loss`` over ``batch_source``;
* ``frozen``: the encoder never changes, so its features are computed once (cached on disk
  for pooled features) and only the head is fitted, in closed form (``fit_head``) or by the Trainer;
* ``classical``: no pretrained model at all (e.g. TF-IDF); ``fit`` returns a predictor.

``multi_task`` strategies train one head per task: the run's own and every data source naming a
``task`` of its own (other strategies read such sources with the run's task, which must match).
``requires`` names the extra data sources (``data.sources.NAME``) a strategy cannot work
without, e.g. ``{"target_unlabeled"}`` for domain adaptation: checked before any work.
``head_after_training`` neural strategies train the encoder with a loss of their own (contrastive pairs,
prototypical episodes) and fit the task head only afterwards: the composition root encodes the
training set with the trained encoder and calls ``fit_head``, which must return True.
``training_defaults`` are training settings the method needs to work at all (LoRA's learning
rate is ~20x full fine-tuning's); they apply unless the user sets the value; ``data_defaults``
likewise for data settings (contrastive reads 256 tokens where the others read 128).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from torch import nn

from transferkit.core.contracts import Batch, Callback, Losses, Pretraining, StrategyKind
from transferkit.core.errors import UserError
from transferkit.data.sources import SingleSource
from transferkit.models import check_weights, is_text_encoder, resolve
from transferkit.models.loading import LoadedModel, load_backbone

SourceKind = Literal["transformer", "vectors", "none"]


def fill_unset(config: Any, defaults: dict[str, Any]) -> Any:
    """The dataclass ``config`` with ``defaults`` for its fields that are None (unset); other keys are skipped."""
    unset = {f.name for f in dataclasses.fields(config) if getattr(config, f.name) is None}
    return dataclasses.replace(config, **{key: value for key, value in defaults.items() if key in unset})


class Strategy:
    """How a pretrained model is adapted.  Subclasses set the class attributes and a ``Config`` dataclass."""

    name: ClassVar[str]
    supports: ClassVar[frozenset[str]]
    requires: ClassVar[frozenset[str]] = frozenset()
    kind: ClassVar[StrategyKind] = "neural"
    source_kind: ClassVar[SourceKind] = "transformer"
    random_init: ClassVar[bool] = False
    saves_delta: ClassVar[bool] = False
    multi_task: ClassVar[bool] = False
    head_after_training: ClassVar[bool] = False
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
    def check_task(self, task_cls: type) -> None:
        """Fail (UserError) when an option cannot serve ``task_cls``; ``supports`` was already checked."""

    def check_source(self, model_ref: str) -> None:
        """Fail before any work on an unknown model, a directory without safe weights, or a frozen text
        encoder (nothing in it can be trained: only ``feature_extraction`` takes one)."""
        if is_text_encoder(model_ref):
            raise UserError(f"strategy '{self.name}' cannot train {str(model_ref).strip()} (a frozen text encoder): "
                            "use feature_extraction")
        resolved = resolve(model_ref)
        if resolved.is_local and not self.random_init:
            check_weights(resolved.path_or_id)

    def check_tasks(self, names: list[str]) -> None:
        """``multi_task`` strategies: fail (UserError) when an option names a task that is not among ``names``
        (the data sources that carry a task of their own)."""

    def check_sources(self, available: Sequence[str]) -> None:
        """Fail with one line naming what is missing when a required data source is absent."""
        missing = sorted(self.requires - set(available))
        if missing:
            names = ", ".join(f"data.sources.{name}" for name in missing)
            raise UserError(f"strategy '{self.name}' needs {names}: add it to the config "
                            f"(e.g. --set data.sources.{missing[0]}=FILE)")

    # ---- the model ---------------------------------------------------------------------------
    @property
    def mlp_hidden(self) -> int:
        """Hidden units of the task head (0 = a linear head)."""
        return 0

    def load_source(self, model_ref: str, train: Any, seq2seq: bool = False) -> LoadedModel:
        """The source model: the pretrained (or, for ``random_init``, re-initialised) transformer;
        ``seq2seq`` asks for the whole encoder-decoder LM when the checkpoint is one."""
        return load_backbone(model_ref, random_init=self.random_init, seq2seq=seq2seq)

    def pretraining(self) -> Pretraining | None:
        """Continued pretraining of the source encoder before the task model is built (DAPT/TAPT); None = none."""
        return None

    def teacher_outputs(self) -> frozenset[str]:
        """What a teacher (the run's ``teacher``: a finished run) must provide for every training row, computed
        once before training: ``"logits"`` (as ``teacher_logits``), ``"features"`` (``teacher_features``).
        Empty (the default) = the strategy learns from no teacher, and a configured one is refused."""
        return frozenset()

    def init_from_teacher(self, model: nn.Module, teacher: nn.Module) -> str | None:
        """Copy what the student should start from out of the teacher's task model; returns a description
        for metrics.json, or None when nothing was copied (the default)."""
        return None

    def prepare(self, model: nn.Module) -> nn.Module:
        """Freeze / inject adapters / add auxiliary modules; returns the model to train."""
        return model

    def merge(self, model: nn.Module) -> nn.Module:
        """Fold a trained delta into full weights (e.g. ``W = W₀ + BA``); nothing to fold by default."""
        return model

    # ---- training ----------------------------------------------------------------------------
    def param_groups(self, model: nn.Module, learning_rate: float, head_learning_rate: float,
                     weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups of what trains; frozen parameters must not appear (no optimizer state)."""
        from transferkit.strategies.common import optimizer_groups

        head = [(n, p) for n, p in model.head.named_parameters() if p.requires_grad]
        head_ids = {id(p) for _, p in head}
        body = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in head_ids]
        return optimizer_groups([("body", body), ("head", head)], {"body": learning_rate, "head": head_learning_rate},
                                weight_decay)

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

    # ---- frozen and classical strategies -----------------------------------------------------
    def fit_head(self, model: nn.Module, features: Any, labels: Any, seed: int) -> bool:
        """``frozen`` strategies: fit the head in closed form and return True, or False to use the Trainer;
        ``head_after_training`` strategies: fit it on the trained encoder's pooled ``features`` (n, dim)."""
        return False

    def fit(self, train: Any, labels: list[str], seed: int) -> Any:
        """``classical`` strategies: fit and return a predictor."""
        raise NotImplementedError(f"strategy '{self.name}' is {self.kind}: it trains through the Trainer, not fit()")

    def resolve_training(self, training: Any) -> Any:
        """``training`` with this strategy's ``training_defaults`` filled in where the user left a value unset (None)."""
        return fill_unset(training, {"eval_every_epoch": True, "epochs": 3, "batch_size": 32, **self.training_defaults})

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


class EncoderThenHead(Strategy):
    """The base of ``head_after_training`` strategies (contrastive pairs, prototypical episodes): only the encoder
    trains, on the strategy's own loss; the head is fitted in closed form afterwards (``fit_head``), so it gets
    no gradient and no optimizer state."""

    head_after_training: ClassVar[bool] = True

    def prepare(self, model: nn.Module) -> nn.Module:
        from transferkit.strategies.common import set_trainable

        set_trainable(list(model.named_parameters()), True)
        set_trainable(list(model.head.named_parameters()), False)
        return model

    def param_groups(self, model: nn.Module, learning_rate: float, head_learning_rate: float,
                     weight_decay: float) -> list[dict[str, Any]]:
        from transferkit.strategies.common import optimizer_groups

        body = [(n, p) for n, p in model.backbone.named_parameters() if p.requires_grad]
        return optimizer_groups([("body", body)], {"body": learning_rate}, weight_decay)
