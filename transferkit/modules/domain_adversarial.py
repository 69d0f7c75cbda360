"""Domain-adversarial training (DANN): gradient reversal, a domain discriminator and its loss.

Ganin & Lempitsky 2015, "Unsupervised Domain Adaptation by Backpropagation" (ICML), and Ganin et
al. 2016, "Domain-Adversarial Training of Neural Networks" (JMLR).  A feature extractor ``F``, a
label classifier ``C`` and a domain discriminator ``D`` play a saddle-point game::

    min_{F,C} max_D   L_y(C(F(x_s)), y_s)  -  λ · L_d(D(F(x_s)), D(F(x_t)))

The gradient reversal layer ``R`` (identity forward, ``-λ`` times the gradient backward) turns it
into one ordinary minimisation of ``L_y + L_d(D(R(F(x))))``: ``D`` descends ``L_d`` (it learns
to tell the domains apart) while ``F`` ascends it (its features stop revealing the domain).
The design follows thuml's Transfer-Learning-Library (``tllib.alignment.dann``): the loss takes
features the model already computed, ``DomainAdversarialLoss(discriminator)(f_s, f_t)``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class GradientReverseFunction(torch.autograd.Function):
    """``R_λ(x) = x`` forward; ``dR_λ/dx = -λ I`` backward (Ganin & Lempitsky 2015, eq. 9)."""

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return features.view_as(features)  # a new tensor node, so backward below is called

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output.neg() * ctx.coefficient, None  # no gradient for the coefficient


def reverse_gradient(features: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """``features`` unchanged, with gradients multiplied by ``-coefficient`` on the way back; any shape."""
    return GradientReverseFunction.apply(features, float(coefficient))


class GradientReverse(nn.Module):
    """The gradient reversal layer as a module: ``R_λ(x) = x`` forward, ``-λ · grad`` backward.

    ``coefficient`` (λ) is the default; ``forward(x, coefficient)`` overrides it per call (e.g. with
    :func:`dann_coefficient` of the training progress).

    >>> x = torch.ones(3, requires_grad=True)
    >>> GradientReverse(coefficient=0.5)(x).sum().backward()
    >>> x.grad
    tensor([-0.5000, -0.5000, -0.5000])
    """

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        self.coefficient = coefficient

    def forward(self, features: torch.Tensor, coefficient: float | None = None) -> torch.Tensor:
        return reverse_gradient(features, self.coefficient if coefficient is None else coefficient)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient}"


def dann_coefficient(progress: float, gamma: float = 10.0) -> float:
    """DANN's adaptation-factor schedule ``λ_p = 2 / (1 + exp(-γ p)) - 1`` (Ganin et al. 2016, §5.2.2).

    ``progress`` p in [0, 1] is the fraction of training done; λ rises from 0 to ~1 (γ = 10), which
    keeps the discriminator's noisy early signal from disturbing the features.

    >>> dann_coefficient(0.0), round(dann_coefficient(0.5), 4), round(dann_coefficient(1.0), 4)
    (0.0, 0.9866, 0.9999)
    """
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"training progress must be in [0, 1], got {progress}")
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


class DomainDiscriminator(nn.Module):
    """``D``: an MLP from features to one domain logit, ``(batch, in_features) -> (batch,)``.

    ``Linear-ReLU-Dropout`` twice, then ``Linear(hidden_size, 1)`` (Ganin et al. 2016 use
    1024-1024 for images; a few hundred units suffice for sentence features).  The output is a
    logit: ``sigmoid(D(f))`` is the probability that ``f`` came from the source domain.

    >>> DomainDiscriminator(in_features=384, hidden_size=256)(torch.zeros(8, 384)).shape
    torch.Size([8])
    """

    def __init__(self, in_features: int, hidden_size: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden_size), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden_size, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features).squeeze(-1)  # (batch, 1) -> (batch,)


class DomainAdversarialOutput(NamedTuple):
    """What :class:`DomainAdversarialLoss` returns: the loss to add, and how well ``D`` told the domains apart."""

    loss: torch.Tensor
    """0-d; backpropagates into the discriminator (descent) and, reversed, into the features (ascent)."""
    accuracy: torch.Tensor
    """0-d, detached: class-balanced domain accuracy ``(acc_s + acc_t) / 2``; 0.5 = domains indistinguishable."""


class DomainAdversarialLoss(nn.Module):
    """DANN's domain loss on gradient-reversed features (Ganin et al. 2016, eq. 9-10).

    With ``d = D(R_λ(f))`` (logits), source domain label 1 and target label 0::

        L_d = 1/2 · [ BCE(d_s, 1) + BCE(d_t, 0) ]
            = -1/2 · [ mean_i log σ(d_s,i) + mean_j log(1 - σ(d_t,j)) ]

    Each domain's term is averaged on its own, so unequal batch sizes weigh both domains equally.
    Add ``L_d`` to the task loss: the reversal layer makes ``D`` minimise it and the features
    maximise it (scaled by λ = ``coefficient``).

    Shapes: ``f_s`` (n_s, dim), ``f_t`` (n_t, dim) -> :class:`DomainAdversarialOutput` of 0-d tensors.

    >>> _ = torch.manual_seed(0)
    >>> adversarial = DomainAdversarialLoss(DomainDiscriminator(in_features=16, hidden_size=32))
    >>> f_s, f_t = torch.randn(8, 16, requires_grad=True), torch.randn(6, 16)
    >>> loss, accuracy = adversarial(f_s, f_t, coefficient=dann_coefficient(0.3))
    >>> loss.backward()
    >>> loss.shape, f_s.grad.shape, 0.0 <= float(accuracy) <= 1.0
    (torch.Size([]), torch.Size([8, 16]), True)
    """

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.progress = 0.0  # training progress p in [0, 1], fed by a training callback: the reversal schedule's input

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor, coefficient: float = 1.0) -> DomainAdversarialOutput:
        if f_s.shape[0] == 0 or f_t.shape[0] == 0:
            raise ValueError(f"domain adversarial loss needs source and target features, got {f_s.shape[0]} and "
                             f"{f_t.shape[0]} rows")
        logits = self.discriminator(reverse_gradient(torch.cat([f_s, f_t]), coefficient))  # (n_s + n_t,)
        d_s, d_t = logits[: f_s.shape[0]], logits[f_s.shape[0]:]
        loss = 0.5 * (F.binary_cross_entropy_with_logits(d_s, torch.ones_like(d_s))
                      + F.binary_cross_entropy_with_logits(d_t, torch.zeros_like(d_t)))
        with torch.no_grad():  # a logit > 0 says "source"
            accuracy = 0.5 * ((d_s > 0).float().mean() + (d_t <= 0).float().mean())
        return DomainAdversarialOutput(loss, accuracy)
