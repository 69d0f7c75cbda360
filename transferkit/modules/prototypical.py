"""Prototypical networks: classify by the squared Euclidean distance to class means of embeddings.

Snell, Swersky & Zemel 2017, "Prototypical Networks for Few-shot Learning".  In an episode with
support set ``S_k`` (the embedded support examples of class ``k``) and a query embedding ``z``::

    c_k          = (1/|S_k|) Σ_{s ∈ S_k} s                       (prototype: the class mean)
    logit_k(z)   = -‖z - c_k‖²                                    (squared Euclidean distance)
    p(y = k | z) = softmax_k(logit_k(z))
    L            = (1/|Q|) Σ_{(z, y) ∈ Q} -log p(y | z)           (cross-entropy over the queries)

Squared Euclidean distance makes the classifier linear in ``z`` (Snell et al. §2.3): expanding,
``-‖z - c_k‖² = 2 c_k·z - ‖c_k‖² - ‖z‖²``, and ``-‖z‖²`` is the same for every class, so a linear
layer with ``W_k = 2 c_k`` and ``b_k = -‖c_k‖²`` (:func:`prototype_linear`) gives the same softmax
and argmax as the distance classifier: a prototype classifier can be written into an ordinary
linear head.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def class_prototypes(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(n, d) embeddings, (n,) labels in ``0 .. num_classes-1`` -> (num_classes, d) class means ``c_k``.

    Every class needs at least one row (a class without one has no prototype).
    """
    counts = torch.bincount(labels, minlength=num_classes)  # (C,)
    if counts.shape[0] != num_classes or bool((counts == 0).any()):
        missing = [k for k in range(num_classes) if k >= counts.shape[0] or int(counts[k]) == 0]
        raise ValueError(f"class_prototypes: labels must cover 0..{num_classes - 1} with a row each; missing {missing}")
    sums = torch.zeros(num_classes, embeddings.shape[1], dtype=embeddings.dtype, device=embeddings.device)
    sums.index_add_(0, labels, embeddings)  # (C, d)
    return sums / counts.unsqueeze(1).to(embeddings.dtype)


def prototype_logits(queries: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """(m, d) query embeddings, (C, d) prototypes -> (m, C) logits ``-‖z - c_k‖²`` (exact differences, not the
    expanded form, which loses precision when ``‖z‖`` is large)."""
    return -(queries.unsqueeze(1) - prototypes.unsqueeze(0)).pow(2).sum(dim=-1)


def prototype_linear(prototypes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, d) prototypes -> (weight (C, d), bias (C,)) = ``(2 c_k, -‖c_k‖²)``: ``W z + b = -‖z - c_k‖² + ‖z‖²``."""
    return 2.0 * prototypes, -prototypes.pow(2).sum(dim=1)


class PrototypicalOutput(NamedTuple):
    """The episode's loss, and (0-d, detached) the fraction of its queries classified correctly."""

    loss: torch.Tensor
    accuracy: torch.Tensor


class PrototypicalLoss(nn.Module):
    """``L`` of the module docstring over one episode given as one batch.

    Shapes: embeddings ``(n, d)``, episode-local labels ``(n,)`` in ``0 .. N-1``, ``is_query`` ``(n,)`` bool
    (True = query row, False = support row) -> :class:`PrototypicalOutput`.  Computed in float32.

    Example::

        >>> loss = PrototypicalLoss()
        >>> embeddings = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.5, 0.0], [3.0, 0.0]])
        >>> out = loss(embeddings, torch.tensor([0, 1, 0, 1]), torch.tensor([False, False, True, True]))
        >>> float(out.accuracy), round(float(out.loss), 4)   # queries 0.5 and 3.0 lie nearest their own class
        (1.0, 0.0002)
    """

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, is_query: torch.Tensor) -> PrototypicalOutput:
        if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1] or is_query.shape != labels.shape:
            raise ValueError(f"PrototypicalLoss takes (n, d) embeddings with (n,) labels and is_query, got "
                             f"{tuple(embeddings.shape)}, {tuple(labels.shape)}, {tuple(is_query.shape)}")
        query = is_query.bool()
        support_labels, query_labels = labels[~query], labels[query]
        if not support_labels.numel() or not query_labels.numel():
            raise ValueError("an episode needs support and query rows")
        prototypes = class_prototypes(embeddings[~query].float(), support_labels, int(support_labels.max()) + 1)
        logits = prototype_logits(embeddings[query].float(), prototypes)  # (m, N)
        loss = F.cross_entropy(logits, query_labels)
        accuracy = (logits.detach().argmax(dim=1) == query_labels).float().mean()
        return PrototypicalOutput(loss, accuracy)
