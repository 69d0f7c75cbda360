"""The shared core of feature-alignment domain adaptation: ``dann``, ``coral``, ``mmd``.

Unsupervised domain adaptation: labelled source examples (``data.train``), unlabelled text of the
target domain (``data.sources.target_unlabeled``), and a model that must work on the target.
Each optimiser step takes one source batch and one target batch (:class:`ZippedSources`), runs the
model on both, and minimises

    L = L_task(source) + λ · L_align(f_s, f_t)

where ``f_s``, ``f_t`` are the pooled features the classifier head already reads (no extra
encoder pass) and ``L_align`` is the method's distance between the two feature distributions
(adversarial for DANN, second moments for CORAL, kernel embeddings for MMD).  Everything else is
full fine-tuning (:class:`~transferkit.strategies.finetune.Finetune`'s options apply).  The
alignment module, when it has weights (DANN's discriminator), lives in ``model.auxiliary``:
trained at the head's learning rate unless the method says otherwise, never saved with the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Callback, Losses, TrainState
from transferkit.core.errors import UserError
from transferkit.data.sources import SingleSource, ZippedSources
from transferkit.strategies.common import auxiliary_groups, set_trainable
from transferkit.strategies.finetune import Finetune, FinetuneConfig

TARGET = "target_unlabeled"
"""The data source holding the unlabelled target-domain text."""

COLLAPSE_RATIO = 0.5
"""Warn when a class gets less than this fraction of its source share among an epoch's target predictions."""

SAME_TEXT_WARNING = 0.5
"""Warn when more than this fraction of the target examples also occur in the source."""

logger = logging.getLogger("transferkit")


def warn_if_same_text(source: list[dict[str, Any]], target: list[dict[str, Any]]) -> float:
    """The fraction of target examples (as token ids) that also occur in the source; warns above ``SAME_TEXT_WARNING``."""
    seen = {tuple(row["input_ids"]) for row in source}
    shared = sum(tuple(row["input_ids"]) in seen for row in target) / max(len(target), 1)
    if shared > SAME_TEXT_WARNING:
        logger.warning("%.0f%% of data.sources.%s also occurs in data.train: domain adaptation needs text from the "
                       "target domain, not the source's own", 100 * shared, TARGET)
    return shared


@dataclass
class AlignmentConfig(FinetuneConfig):
    weight: float = option(1.0, "λ: weight of the alignment loss beside the task loss on the source")


class DomainAlignment(Finetune):
    """Fine-tuning on the source plus ``λ · L_align`` between source and target features (see the module docstring)."""

    supports: ClassVar[frozenset[str]] = frozenset({"classification"})
    requires: ClassVar[frozenset[str]] = frozenset({TARGET})
    Config: ClassVar[type] = AlignmentConfig

    training_defaults: ClassVar[dict[str, Any]] = {**Finetune.training_defaults, "eval_every_epoch": False}
    """Keep the last epoch's model: choosing the epoch on the source's held-out accuracy favours the least
    adapted one (adaptation trades source accuracy for target accuracy, and DANN's and pseudo-labelling's
    terms ramp in over training; You et al. 2019, "Towards Accurate Model Selection in Deep UDA")."""

    alignment: ClassVar[type[nn.Module]]
    """The method's loss module, ``alignment()(f_s, f_t) -> L_align`` (DANN builds its own: it holds weights)."""

    # ---- what a method may redefine -------------------------------------------------------
    def build_alignment(self, hidden_size: int, num_labels: int) -> nn.Module:
        """The method's loss module for features of ``hidden_size`` and ``num_labels`` classes (it may hold
        weights, e.g. a domain discriminator, or statistics, e.g. pseudo-labelling's running class prior)."""
        return self.alignment()

    def alignment_loss(self, module: nn.Module, source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                       batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """``(L_align, logged parts)`` for the model's outputs (``logits``, pooled ``features``) on one source
        and one target batch; ``batch["source"]`` holds the source labels.  By default the module compares
        the pooled features."""
        return module(source["features"], target["features"]), {}

    # ---- shared machinery ---------------------------------------------------------------
    def prepare(self, model: Any) -> Any:
        if self.config.weight <= 0:
            raise UserError(f"strategy.weight={self.config.weight}: the alignment weight λ must be > 0")
        model.auxiliary["alignment"] = self.build_alignment(model.backbone.config.hidden_size, len(model.task.labels))
        super().prepare(model)
        set_trainable(list(model.auxiliary.named_parameters()), True)
        return model

    def auxiliary_learning_rate(self, learning_rate: float, head_learning_rate: float) -> float:
        """The learning rate of the alignment module's weights, if it has any: the head's by default."""
        return head_learning_rate

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list[dict]:
        groups = super().param_groups(model, learning_rate, head_learning_rate, weight_decay)
        rate = self.auxiliary_learning_rate(learning_rate, head_learning_rate)
        return groups + auxiliary_groups(model, rate, weight_decay)

    def batch_source(self, features: dict[str, list[dict[str, Any]]], collator: Any, config: Any) -> ZippedSources:
        """One labelled source batch and one unlabelled target batch per step; an epoch is a pass over the source."""
        warn_if_same_text(features["train"], features[TARGET])
        return ZippedSources({"source": SingleSource.from_config(features["train"], collator, config),
                              "target": SingleSource.from_config(features[TARGET], collator, config, config.seed + 1)}, lead="source")

    def callbacks(self) -> list[Callback]:
        return [*super().callbacks(), TargetMonitor()]

    def loss(self, model: Any, batch: Batch) -> Losses:
        source = model(batch["source"])
        task = model.task.loss(source, batch["source"])
        target = model(batch["target"])
        observed = {"source_labels": batch["source"]["labels"].detach(), "target_logits": target["logits"].detach()}
        if min(len(source["features"]), len(target["features"])) < 2:  # one row: no covariance / pairwise distances
            return Losses(task, {"task": float(task.detach())}, observed)
        align, parts = self.alignment_loss(model.auxiliary["alignment"], source, target, batch)
        total = task + self.config.weight * align
        return Losses(total, {"task": float(task.detach()), "align": float(align.detach()), **parts}, observed)


class ProgressMonitor(Callback):
    """Feeds training progress ``p = step / total_steps`` in [0, 1] to the alignment module's ``progress`` (DANN's
    reversal schedule, pseudo-labelling's ramp-up); subclasses add their own per-epoch statistics."""

    def on_fit_start(self, state: TrainState, model: Any) -> None:
        model.auxiliary["alignment"].progress = min(state.step / max(state.total_steps, 1), 1.0)

    def on_step_end(self, state: TrainState, model: Any, losses: Losses) -> None:
        model.auxiliary["alignment"].progress = min(state.step / max(state.total_steps, 1), 1.0)

class ClassCounts:
    """Running per-class counts of the source labels and of the model's target predictions (argmax)."""

    def __init__(self) -> None:
        self.source: torch.Tensor | None = None
        self.target: torch.Tensor | None = None

    def add(self, labels: torch.Tensor, target_logits: torch.Tensor) -> None:
        classes = target_logits.shape[1]
        source = torch.bincount(labels.detach().cpu(), minlength=classes)
        target = torch.bincount(target_logits.detach().argmax(dim=1).cpu(), minlength=classes)
        self.source = source if self.source is None else self.source + source
        self.target = target if self.target is None else self.target + target

    def shares(self) -> tuple[list[float], list[float]] | None:
        """(source label shares, target prediction shares) since the last reset, then reset; None if nothing was seen."""
        if self.source is None or self.target is None:
            return None
        shares = (self.source / self.source.sum()).tolist(), (self.target / self.target.sum()).tolist()
        self.source = self.target = None
        return shares


class TargetMonitor(Callback):
    """Logs per epoch the classes the model predicts on the target batches beside the source's label shares, and
    warns when a class gets under ``COLLAPSE_RATIO`` of its source share: adaptation collapsing the target onto
    one class (adversarial features that overpower the discriminator, self-training feeding on its own lean) is
    visible without a single target label."""

    def __init__(self) -> None:
        self.counts = ClassCounts()  # source labels and target predictions seen since the last epoch's report

    def on_batch_end(self, state: TrainState, model: Any, losses: Losses) -> None:
        if "target_logits" in losses.observed:
            self.counts.add(losses.observed["source_labels"], losses.observed["target_logits"])

    def on_epoch_start(self, state: TrainState, model: Any) -> None:
        self._report(state, model)

    def on_fit_end(self, state: TrainState, model: Any) -> None:
        self._report(state, model)

    def _report(self, state: TrainState, model: Any) -> None:
        shares = self.counts.shares()
        if shares is None:
            return
        source, target = shares
        labels = model.task.labels
        state.history.append({"step": state.step, "epoch": state.epoch,
                              "target_predictions": dict(zip(labels, target, strict=True))})
        logger.info("target predictions: %s (source labels: %s)",
                    ", ".join(f"{name} {share:.2f}" for name, share in zip(labels, target, strict=True)),
                    ", ".join(f"{name} {share:.2f}" for name, share in zip(labels, source, strict=True)))
        starved = [name for name, s, t in zip(labels, source, target, strict=True) if t < COLLAPSE_RATIO * s]
        if starved:
            logger.warning("the model predicts %s on under half as many target examples as the source has: "
                           "adaptation may be collapsing the target onto the other classes; compare with "
                           "source_only, or lower strategy.weight", ", ".join(starved))

    def state_dict(self) -> dict[str, Any]:
        counts = self.counts
        return {"source": None if counts.source is None else counts.source.tolist(),
                "target": None if counts.target is None else counts.target.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        counts = self.counts
        counts.source = None if state["source"] is None else torch.tensor(state["source"])
        counts.target = None if state["target"] is None else torch.tensor(state["target"])
