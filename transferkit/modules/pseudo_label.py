"""Confidence-thresholded pseudo-labels on unlabelled target text, with distribution alignment.

Pseudo-Label (Lee 2013, "Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for
Deep Neural Networks"): the model's own confident predictions on unlabelled target examples become
their training labels.  With the threshold of FixMatch (Sohn et al. 2020) and the distribution
alignment of ReMixMatch (Berthelot et al. 2020), for a target batch of ``n`` rows and ``C`` classes::

    p_i   = softmax(z_i)                                  (detached; z_i the target logits)
    p̃_i   = normalise(p_i · π / m)                        (π: source label prior, m: running mean of p)
    ŷ_i   = argmax_c p̃_ic,   mask_i = [max_c p̃_ic ≥ τ]
    L_pl  = (1/n) Σ_i mask_i · CE(z_i, ŷ_i)

Distribution alignment keeps a source classifier that leans to one class on the target (a common
failure under domain shift) from feeding that lean back to itself: the predictions are rescaled so
that, on average, they follow the source's class prior.  ``π`` and ``m`` are exponential moving
averages over batches (the source labels' one-hot vectors and the target predictions).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class PseudoLabelOutput(NamedTuple):
    """The loss to add, and (0-d, detached) the fraction of target rows whose pseudo-label passed the threshold."""

    loss: torch.Tensor
    mask_rate: torch.Tensor


class PseudoLabelLoss(nn.Module):
    """``L_pl`` of the module docstring.

    Shapes: target logits ``(n, C)``, source labels ``(n_s,)`` (class ids) -> :class:`PseudoLabelOutput`.

    Example::

        >>> loss = PseudoLabelLoss(num_classes=2, threshold=0.6)
        >>> out = loss(torch.tensor([[2.0, -2.0], [0.1, 0.0]]), torch.tensor([0, 1]))
        >>> round(float(out.mask_rate), 2)   # the first row is confident, the second is not
        0.5
    """

    def __init__(self, num_classes: int, threshold: float = 0.9, momentum: float = 0.99,
                 align_distribution: bool = True) -> None:
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.threshold, self.momentum, self.align_distribution = threshold, momentum, align_distribution
        self.progress = 0.0  # training progress p in [0, 1], fed by a training callback: the ramp-up's input
        uniform = torch.full((num_classes,), 1.0 / num_classes)
        self.register_buffer("source_prior", uniform.clone())
        self.register_buffer("target_mean", uniform.clone())

    def _update(self, buffer: torch.Tensor, batch_mean: torch.Tensor) -> None:
        buffer.mul_(self.momentum).add_(batch_mean.to(buffer.dtype), alpha=1.0 - self.momentum)

    def forward(self, target_logits: torch.Tensor, source_labels: torch.Tensor) -> PseudoLabelOutput:
        num_classes = self.source_prior.shape[0]
        if target_logits.dim() != 2 or target_logits.shape[1] != num_classes:
            raise ValueError(f"PseudoLabelLoss({num_classes} classes) takes (n, {num_classes}) logits, "
                             f"got {tuple(target_logits.shape)}")
        probabilities = target_logits.detach().float().softmax(dim=1)  # (n, C)
        with torch.no_grad():
            self._update(self.source_prior, F.one_hot(source_labels, num_classes).float().mean(dim=0))
            self._update(self.target_mean, probabilities.mean(dim=0))
            if self.align_distribution:
                probabilities = probabilities * (self.source_prior / self.target_mean.clamp_min(1e-6))
                probabilities = probabilities / probabilities.sum(dim=1, keepdim=True)
            confidence, pseudo = probabilities.max(dim=1)  # (n,), (n,)
            mask = (confidence >= self.threshold).float()
        per_row = F.cross_entropy(target_logits.float(), pseudo, reduction="none")  # (n,)
        return PseudoLabelOutput((per_row * mask).mean(), mask.mean())
