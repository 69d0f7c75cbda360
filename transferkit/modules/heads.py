"""Task heads: small modules on top of an encoder."""

from __future__ import annotations

import torch
from torch import nn

from transferkit.modules.pooling import POOLERS


class ClassificationHead(nn.Module):
    """Pool token states (and, with ``normalize``, scale them to unit length: ``z/‖z‖``), then a linear layer
    (or a one-hidden-layer MLP) to class logits.

    ``project`` works on already pooled features, which is what lets a frozen encoder's
    features be computed once and cached.

    >>> head = ClassificationHead(hidden_size=384, num_labels=2)
    >>> head.project(torch.zeros(4, 384)).shape
    torch.Size([4, 2])
    """

    def __init__(self, hidden_size: int, num_labels: int, pooling: str = "mean", dropout: float = 0.1, mlp_hidden: int = 0,
                 normalize: bool = False) -> None:
        super().__init__()
        self.pooling, self.normalize = pooling, normalize
        self.pool = POOLERS[pooling]
        self.dropout = nn.Dropout(dropout)
        if mlp_hidden > 0:
            self.classifier: nn.Module = nn.Sequential(
                nn.Linear(hidden_size, mlp_hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_hidden, num_labels)
            )
        else:
            self.classifier = nn.Linear(hidden_size, num_labels)

    def features(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, seq, dim) token states -> (batch, dim) pooled (and, with ``normalize``, unit-length) features."""
        pooled = self.pool(hidden, attention_mask)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, seq, dim) token states -> (batch, num_labels) logits."""
        return self.project(self.features(hidden, attention_mask))

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, dim) pooled features -> (batch, num_labels) logits."""
        return self.classifier(self.dropout(features))

    def output_layer(self) -> nn.Linear:
        """The final linear layer (e.g. to set closed-form logistic-regression weights)."""
        return self.classifier if isinstance(self.classifier, nn.Linear) else self.classifier[-1]


class TokenHead(nn.Module):
    """Dropout + a linear layer on every token state: (batch, seq, dim) -> (batch, seq, num_outputs).

    Tags per token for NER (``num_outputs`` = tags), start/end logits for extractive QA
    (``num_outputs`` = 2, Devlin et al. 2019 §4.2).  The features are the token states
    themselves, so ``project`` also serves token states cached from a frozen encoder.

    >>> TokenHead(hidden_size=384, num_outputs=2).project(torch.zeros(4, 7, 384)).shape
    torch.Size([4, 7, 2])
    """

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_outputs)

    def features(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return hidden

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.project(hidden)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, seq, dim) token states -> (batch, seq, num_outputs) logits ``W h_t + b``."""
        return self.classifier(self.dropout(features))


class ColumnsHead(nn.Module):
    """Another head restricted to some of its outputs: ``project(z) = head.project(z)[..., columns]``.

    A stage of a continual stream learned in the ``task`` setting owns some rows of the shared output layer; this
    view is its own head, and a softmax over its logits is the full softmax renormalised over the stage's classes,
    ``p(y | x, stage) = exp(s_y) / Σ_{c ∈ stage} exp(s_c)``.  It shares the wrapped head's weights (no copy).

    >>> ColumnsHead(ClassificationHead(hidden_size=8, num_labels=5), [1, 3]).project(torch.zeros(4, 8)).shape
    torch.Size([4, 2])
    """

    def __init__(self, head: nn.Module, columns: list[int]) -> None:
        super().__init__()
        self.head = head
        self.register_buffer("columns", torch.as_tensor(columns, dtype=torch.long), persistent=False)

    def features(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head.features(hidden, attention_mask)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(hidden, attention_mask))

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, dim) features -> (batch, len(columns)) logits."""
        return self.head.project(features)[..., self.columns]
