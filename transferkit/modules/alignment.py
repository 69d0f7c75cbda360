"""Statistic-matching domain losses: Deep CORAL (covariances) and multi-kernel MMD (all moments).

Both take features the model already computed for a source batch ``f_s`` (n_s, dim) and a target
batch ``f_t`` (n_t, dim), return a 0-d loss that is ~0 when the two batches come from the same
distribution, and are added to the task loss as ``L = L_y(source) + λ · L_align(f_s, f_t)``.
The batch sizes may differ.  The design follows thuml's Transfer-Learning-Library
(``tllib.alignment.coral``, ``tllib.alignment.dan``); the formulas follow the papers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn


def covariance(features: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance ``C = (X - 1 μ)^T (X - 1 μ) / (n - 1)`` of (n, dim) features -> (dim, dim)."""
    centered = features - features.mean(dim=0, keepdim=True)  # (n, dim)
    return centered.T @ centered / (features.shape[0] - 1)


def _check_batches(f_s: torch.Tensor, f_t: torch.Tensor, minimum: int, name: str) -> None:
    if f_s.dim() != 2 or f_t.dim() != 2 or f_s.shape[1] != f_t.shape[1]:
        raise ValueError(f"{name} takes (n_s, dim) and (n_t, dim) features, got {tuple(f_s.shape)} and "
                         f"{tuple(f_t.shape)}")
    if min(f_s.shape[0], f_t.shape[0]) < minimum:
        raise ValueError(f"{name} needs at least {minimum} source and {minimum} target rows per batch, got "
                         f"{f_s.shape[0]} and {f_t.shape[0]}")


class CoralLoss(nn.Module):
    """Deep CORAL (Sun & Saenko 2016, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", eq. 1).

    The squared Frobenius distance between the source and target feature covariances::

        L_CORAL = ||C_s - C_t||_F^2 / (4 d^2),   C = (X^T X - (1/n) (1^T X)^T (1^T X)) / (n - 1)

    with ``d`` the feature dimension.  Second-order statistics only (means are not matched); the
    unbiased covariance needs at least two rows per domain.

    Shapes: ``f_s`` (n_s, d), ``f_t`` (n_t, d) -> 0-d.

    >>> _ = torch.manual_seed(0)
    >>> f_s = torch.randn(64, 8)
    >>> float(CoralLoss()(f_s, f_s))
    0.0
    >>> float(CoralLoss()(f_s, 3 * torch.randn(48, 8))) > 0.1
    True
    """

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        _check_batches(f_s, f_t, 2, "CoralLoss")
        d = f_s.shape[1]
        return (covariance(f_s) - covariance(f_t)).pow(2).sum() / (4 * d * d)


def squared_distances(points: torch.Tensor) -> torch.Tensor:
    """``||x_i - x_j||^2`` for every pair of rows: (n, dim) -> (n, n), via ``|x|^2 + |y|^2 - 2 x·y``."""
    norms = points.pow(2).sum(dim=1)  # (n,)
    return (norms[:, None] + norms[None, :] - 2 * points @ points.T).clamp_min(0.0)


class MultiKernelMMD(nn.Module):
    """Multi-kernel maximum mean discrepancy (Long et al. 2015, "Learning Transferable Features with Deep
    Adaptation Networks" (DAN), eq. 1-3; estimators from Gretton et al. 2012, JMLR, "A Kernel Two-Sample Test").

    ``MMD^2 = ||E_s φ(f) - E_t φ(f)||^2_H`` for the kernel ``k = (1/m) Σ_u k_u``, an average of Gaussian
    kernels ``k_u(x, y) = exp(-||x - y||^2 / (2 σ_u^2))`` whose bandwidths ``σ_u^2 = c_u · base`` scale a
    base taken from the batch itself: the mean (or median) squared distance between distinct rows of
    ``[f_s; f_t]`` (detached: the bandwidth follows the features without being trained).  The default
    multipliers ``c_u = 2^k, k = -2..2`` are DAN's family of kernels around the median heuristic.

    Unbiased (U-statistic, Gretton et al. Lemma 6; can dip slightly below 0)::

        MMD_u^2 = Σ_{i≠j} k(s_i, s_j) / (n_s (n_s-1)) + Σ_{i≠j} k(t_i, t_j) / (n_t (n_t-1))
                  - 2 Σ_{i,j} k(s_i, t_j) / (n_s n_t)

    Biased (V-statistic, ``unbiased=False``, always >= 0): the same with the diagonal terms kept and
    ``n^2`` denominators.  This is the quadratic-time estimator (DAN itself uses a linear-time one).

    Shapes: ``f_s`` (n_s, dim), ``f_t`` (n_t, dim), n_s and n_t may differ -> 0-d.

    >>> _ = torch.manual_seed(0)
    >>> mmd = MultiKernelMMD()
    >>> abs(float(mmd(torch.randn(100, 4), torch.randn(80, 4)))) < 0.02
    True
    >>> float(mmd(torch.randn(100, 4), torch.randn(80, 4) + 2.0)) > 0.2
    True
    """

    def __init__(self, multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
                 base: Literal["mean", "median"] = "mean", unbiased: bool = True) -> None:
        super().__init__()
        if not multipliers or min(multipliers) <= 0:
            raise ValueError(f"MultiKernelMMD needs positive bandwidth multipliers, got {tuple(multipliers)}")
        if base not in ("mean", "median"):
            raise ValueError(f"MultiKernelMMD base must be 'mean' or 'median', got {base!r}")
        self.multipliers = tuple(float(c) for c in multipliers)
        self.base = base
        self.unbiased = unbiased

    def kernel(self, distances: torch.Tensor) -> torch.Tensor:
        """(n, n) squared distances of distinct and equal rows -> (n, n) averaged Gaussian kernel values."""
        n = distances.shape[0]
        off_diagonal = distances.detach()[~torch.eye(n, dtype=torch.bool, device=distances.device)]
        base = off_diagonal.mean() if self.base == "mean" else off_diagonal.median()
        base = base.clamp_min(torch.finfo(distances.dtype).tiny)  # all rows equal: any bandwidth gives k = 1
        return torch.stack([torch.exp(-distances / (2 * c * base)) for c in self.multipliers]).mean(dim=0)

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        _check_batches(f_s, f_t, 2 if self.unbiased else 1, "MultiKernelMMD")
        n_s = f_s.shape[0]
        k = self.kernel(squared_distances(torch.cat([f_s, f_t])))  # (n_s + n_t, n_s + n_t)
        k_ss, k_tt, k_st = k[:n_s, :n_s], k[n_s:, n_s:], k[:n_s, n_s:]
        return self._within(k_ss) + self._within(k_tt) - 2 * k_st.mean()

    def _within(self, block: torch.Tensor) -> torch.Tensor:
        """Mean kernel value within one domain: over i ≠ j (unbiased) or over all i, j (biased)."""
        if not self.unbiased:
            return block.mean()
        n = block.shape[0]
        return (block.sum() - block.diagonal().sum()) / (n * (n - 1))

    def extra_repr(self) -> str:
        return f"multipliers={self.multipliers}, base={self.base!r}, unbiased={self.unbiased}"
