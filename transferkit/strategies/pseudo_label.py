"""``pseudo_label``: self-training on the unlabelled target domain (Lee 2013, "Pseudo-Label"; with
FixMatch's confidence threshold, Sohn et al. 2020, and ReMixMatch's distribution alignment,
Berthelot et al. 2020).

Each step takes one labelled source batch and one unlabelled target batch and minimises

    L = L_task(source) + λ_p · λ · (1/n) Σ_i [max p̃_i ≥ τ] · CE(z_i, argmax p̃_i)

where ``z_i`` are the target logits and ``p̃_i`` the model's own (detached) target probabilities,
rescaled so that on average they follow the source's class prior
(:class:`~transferkit.modules.pseudo_label.PseudoLabelLoss`).  Unlike feature alignment (CORAL,
MMD, DANN), which matches the *marginal* feature distributions and cannot know which target
cluster is which class, self-training moves the decision boundary away from dense target regions
using the classifier's own confident predictions (the cluster assumption).  ``λ_p`` ramps the
pseudo-label term in with DANN's schedule ``2/(1+exp(-γ p))-1`` over training progress ``p``: at the
start the classifier knows nothing and its confident mistakes would be learnt.  The fraction of
target rows above the threshold is logged per epoch (``history``: ``{"pseudo_label": {...}}``), and the shared
monitor of :mod:`~transferkit.strategies.domain_alignment` warns when the target predictions collapse onto
a class (self-training can feed a lean back to itself: seen on dvd -> electronics).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Callback, Losses, TrainState
from transferkit.core.errors import UserError
from transferkit.modules.domain_adversarial import dann_coefficient
from transferkit.modules.pseudo_label import PseudoLabelLoss
from transferkit.strategies.domain_alignment import AlignmentConfig, DomainAlignment, ProgressMonitor

logger = logging.getLogger("transferkit")


@dataclass
class PseudoLabelConfig(AlignmentConfig):
    weight: float = option(1.0, "λ: weight of the pseudo-label loss on target batches beside the task loss on the source")
    threshold: float = option(0.9, "τ: a target prediction becomes a training label when its (aligned) probability is ≥ τ")
    align_distribution: bool = option(True, "rescale target predictions to the source's class prior before thresholding")
    gamma: float = option(10.0, "γ of the ramp-up λ_p = 2/(1+exp(-γ p)) - 1 over training progress p")


class PseudoLabel(DomainAlignment):
    """Fine-tuning on the source plus the model's own confident, prior-aligned labels on target text."""

    name: ClassVar[str] = "pseudo_label"
    Config: ClassVar[type] = PseudoLabelConfig

    def prepare(self, model: Any) -> Any:
        if not 0.0 < self.config.threshold < 1.0:
            raise UserError(f"strategy.threshold={self.config.threshold}: the confidence threshold τ must be in (0, 1)")
        return super().prepare(model)

    def build_alignment(self, hidden_size: int, num_labels: int) -> nn.Module:
        return PseudoLabelLoss(num_labels, self.config.threshold, align_distribution=self.config.align_distribution)

    def alignment_loss(self, module: nn.Module, source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                       batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        ramp = dann_coefficient(module.progress, self.config.gamma)  # p fed by PseudoLabelMonitor
        loss, mask_rate = module(target["logits"], batch["source"]["labels"])
        return ramp * loss, {"mask_rate": float(mask_rate), "ramp": ramp}

    def callbacks(self) -> list[Callback]:
        return [*super().callbacks(), PseudoLabelMonitor(self.config.threshold)]


class PseudoLabelMonitor(ProgressMonitor):
    """Feeds the training progress to the ramp-up; logs the fraction of target rows pseudo-labelled per epoch."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.rates: list[float] = []

    def on_step_end(self, state: TrainState, model: Any, losses: Losses) -> None:
        super().on_step_end(state, model, losses)
        if "mask_rate" in losses.parts:
            self.rates.append(losses.parts["mask_rate"])

    def on_epoch_start(self, state: TrainState, model: Any) -> None:
        self._flush(state)

    def on_fit_end(self, state: TrainState, model: Any) -> None:
        self._flush(state)

    def _flush(self, state: TrainState) -> None:
        if not self.rates:
            return
        rate = float(np.mean(self.rates))
        self.rates = []
        state.history.append({"step": state.step, "epoch": state.epoch, "pseudo_label": {"mask_rate": rate}})
        logger.info("pseudo-labels: %.1f%% of target rows above the threshold %.2f", 100 * rate, self.threshold)

    def state_dict(self) -> dict[str, Any]:
        return {"rates": list(self.rates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rates = list(state["rates"])
