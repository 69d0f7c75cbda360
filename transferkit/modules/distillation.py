"""Knowledge-distillation losses (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

A student with logits ``s`` learns from a teacher's logits ``t`` through their temperature-softened
distributions ``p_T(z) = softmax(z / T)``:

    L_KD = T² · KL(p_T(t) ‖ p_T(s)) = T² · Σ_c p_T(t)_c · (log p_T(t)_c − log p_T(s)_c)

The ``T²`` keeps the gradient's scale independent of ``T`` (the soft-target gradients shrink as
``1/T²``), so ``α·CE(y, s) + (1 − α)·L_KD`` weighs the two terms alike whatever ``T``.  Optionally
the student's hidden states also regress onto the teacher's (FitNets, Romero et al. 2015;
DistilBERT's cosine/MSE terms, Sanh et al. 2019) through a learnt projection when widths differ.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DistillationLoss(nn.Module):
    """``T² · KL(softmax(t/T) ‖ softmax(s/T))``, averaged over examples (or unmasked tokens).

    Shapes: ``student``, ``teacher``: (batch, classes) or per token (batch, seq, classes);
    ``mask``: None or (batch, seq) with 1 where a token counts.  Returns a scalar.

    Example::

        >>> loss = DistillationLoss(temperature=2.0)
        >>> t = torch.tensor([[2.0, 0.0]]); s = torch.tensor([[2.0, 0.0]])
        >>> float(loss(s, t))  # identical logits: no divergence
        0.0
    """

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if student.shape != teacher.shape:
            raise ValueError(f"student logits {tuple(student.shape)} and teacher logits {tuple(teacher.shape)} differ")
        temperature = self.temperature
        log_student = F.log_softmax(student.float() / temperature, dim=-1)
        log_teacher = F.log_softmax(teacher.float() / temperature, dim=-1)
        per_item = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=-1)  # KL per example / token
        if mask is None:
            return per_item.mean() * temperature**2
        weights = mask.to(per_item.dtype)
        return (per_item * weights).sum() / weights.sum().clamp(min=1.0) * temperature**2


class HiddenStateLoss(nn.Module):
    """``MSE(W h_s, h_t)``: the student's features regress onto the teacher's (FitNets hint loss).

    ``W`` is a learnt (student_dim → teacher_dim) linear map when the widths differ, the identity
    otherwise.  Shapes: (batch, dim) pooled or (batch, seq, dim) per token with a (batch, seq) mask.

    Example::

        >>> loss = HiddenStateLoss(4, 4)
        >>> float(loss(torch.ones(2, 4), torch.ones(2, 4)))
        0.0
    """

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.projection: nn.Module = (nn.Identity() if student_dim == teacher_dim
                                      else nn.Linear(student_dim, teacher_dim))

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        squared = (self.projection(student.float()) - teacher.float()).pow(2).mean(dim=-1)
        if mask is None:
            return squared.mean()
        weights = mask.to(squared.dtype)
        return (squared * weights).sum() / weights.sum().clamp(min=1.0)


def distillation_objective(ce: torch.Tensor, kd: torch.Tensor, alpha: float) -> torch.Tensor:
    """``α·CE(y, s) + (1 − α)·L_KD``: α = 1 is plain supervised training, α = 0 pure distillation."""
    return alpha * ce + (1.0 - alpha) * kd
