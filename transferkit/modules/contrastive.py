"""Pair losses on sentence embeddings: what SetFit's contrastive stage minimises.

Both take the embeddings ``u, v`` (B, dim) of the two sides of ``B`` pairs and a similarity target
``s`` (B,) in [0, 1] (1 = same class, 0 = different; a Jaccard overlap for multi-label pairs, see
:mod:`transferkit.data.pairs`), with ``cos(u, v) = u·v / (‖u‖ ‖v‖)``:

* :class:`CosineSimilarityLoss` (Reimers & Gurevych 2019, "Sentence-BERT", §3; the loss of SetFit,
  Tunstall et al. 2022, and sentence-transformers' ``CosineSimilarityLoss``)::

      L = (1/B) Σ_k (cos(u_k, v_k) − s_k)²

* :class:`ContrastiveLoss` (Hadsell, Chopra & LeCun 2006, "Dimensionality Reduction by Learning an
  Invariant Mapping"; sentence-transformers' ``ContrastiveLoss``), on the cosine distance
  ``d = 1 − cos(u, v)`` with margin ``m``::

      L = (1/B) Σ_k ½ [s_k · d_k² + (1 − s_k) · max(0, m − d_k)²]

  Similar pairs are pulled together; dissimilar ones are pushed apart only until they are ``m`` apart,
  so pairs already far enough stop contributing (the squared-error loss keeps pushing them to 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check(u: torch.Tensor, v: torch.Tensor, similarity: torch.Tensor) -> None:
    if u.dim() != 2 or u.shape != v.shape or similarity.shape != u.shape[:1]:
        raise ValueError(f"pair losses take u, v of one (B, dim) shape and a (B,) target; got {tuple(u.shape)}, "
                         f"{tuple(v.shape)}, {tuple(similarity.shape)}")


class CosineSimilarityLoss(nn.Module):
    """``L = mean_k (cos(u_k, v_k) − s_k)²`` (module docstring).

    Shapes: ``u``, ``v`` (B, dim), ``similarity`` (B,) -> a 0-d loss.

    Example::

        >>> u = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> v = torch.tensor([[2.0, 0.0], [0.0, 3.0]])      # cos = 1, then 0
        >>> float(CosineSimilarityLoss()(u, v, torch.tensor([1.0, 1.0])))   # ((1-1)² + (0-1)²) / 2
        0.5
    """

    def forward(self, u: torch.Tensor, v: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        _check(u, v, similarity)
        cosine = F.cosine_similarity(u.float(), v.float(), dim=1)  # (B,)
        return F.mse_loss(cosine, similarity.float())


class ContrastiveLoss(nn.Module):
    """``L = mean_k ½ [s_k d_k² + (1 − s_k) max(0, m − d_k)²]``, ``d = 1 − cos(u, v)`` (module docstring).

    Shapes: ``u``, ``v`` (B, dim), ``similarity`` (B,) -> a 0-d loss.

    Example::

        >>> u = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> v = torch.tensor([[0.0, 1.0], [0.0, 1.0]])      # d = 1 for both pairs
        >>> float(ContrastiveLoss(margin=0.5)(u, v, torch.tensor([1.0, 0.0])))   # (½·1 + 0) / 2
        0.25
    """

    def __init__(self, margin: float = 0.5) -> None:
        super().__init__()
        if not margin > 0:
            raise ValueError(f"margin must be > 0, got {margin}")
        self.margin = margin

    def forward(self, u: torch.Tensor, v: torch.Tensor, similarity: torch.Tensor) -> torch.Tensor:
        _check(u, v, similarity)
        distance = 1.0 - F.cosine_similarity(u.float(), v.float(), dim=1)  # (B,) in [0, 2]
        s = similarity.float()
        per_pair = 0.5 * (s * distance.pow(2) + (1.0 - s) * F.relu(self.margin - distance).pow(2))
        return per_pair.mean()
