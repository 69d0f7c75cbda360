"""Pool token states into one vector per sequence."""

from __future__ import annotations

import torch


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the non-padding token states (Reimers & Gurevych 2019, Sentence-BERT).

    hidden: (batch, seq, dim); attention_mask: (batch, seq) -> (batch, dim)
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def cls_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """State of the first ([CLS]) token (Devlin et al. 2019). (batch, seq, dim) -> (batch, dim)"""
    return hidden[:, 0]


def max_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Element-wise max over the non-padding positions ("max-over-time", Collobert et al. 2011; Kim 2014).

    (batch, seq, dim) -> (batch, dim); padding positions never win.
    """
    padding = (attention_mask == 0).unsqueeze(-1)  # (batch, seq, 1)
    return hidden.masked_fill(padding, torch.finfo(hidden.dtype).min).amax(dim=1)


POOLERS = {"mean": mean_pool, "cls": cls_pool, "max": max_pool}
