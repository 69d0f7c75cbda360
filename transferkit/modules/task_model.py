"""``TaskModel``: a pretrained backbone plus a task head, the object strategies adapt."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

BACKBONE_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TaskModel(nn.Module):
    """Backbone (a Hugging Face base model) + head, driven by a task.

    Args:
        backbone: e.g. ``BertModel``; returns token states.
        head: a module called as ``head(hidden, attention_mask)``; every head also offers
            ``head.project(features)`` for cached frozen-encoder outputs: pooled features
            (batch, dim) for classification, token states (batch, seq, dim) for per-token heads.
        task: the Task (kept as a plain attribute: it owns the loss and decoding).
        layer: which hidden layer feeds the head (-1 = last; 0 = embeddings output).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, task: Any, layer: int = -1) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.task = task
        self.layer = layer

    @classmethod
    def build(cls, backbone: nn.Module, task: Any, mlp_hidden: int = 0) -> TaskModel:
        """Backbone + the task's head sized for it; an encoder may name its own pooling (``default_pooling``)."""
        pooling = getattr(backbone, "default_pooling", "mean")
        head = task.build_head(backbone.config.hidden_size, mlp_hidden, default_pooling=pooling)
        return cls(backbone, head, task, layer=task.config.layer)

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token states of the chosen layer: (batch, seq, dim)."""
        inputs = {k: batch[k] for k in BACKBONE_INPUTS if k in batch}
        if self.layer == -1:
            return self.backbone(**inputs).last_hidden_state
        return self.backbone(**inputs, output_hidden_states=True).hidden_states[self.layer]

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled features (batch, dim): what a frozen-encoder strategy caches."""
        return self.head.pool(self.hidden_states(batch), batch["attention_mask"])

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if "features" in batch:  # cached encoder outputs (pooled or per token): skip the backbone entirely
            return {"logits": self.head.project(batch["features"])}
        return {"logits": self.head(self.hidden_states(batch), batch["attention_mask"])}


def build_task_model(loaded: Any, task: Any, mlp_hidden: int = 0) -> nn.Module:
    """The model a task trains from a loaded source (``.backbone``, ``.tokenizer``, ``.random_init``).

    Backbone + the task's head, or the task's own model when it builds one (``build_model``:
    e.g. summarization's encoder-decoder LM, warm-started from an encoder).
    """
    build = getattr(task, "build_model", None)
    if build is not None:
        return build(loaded.backbone, loaded.tokenizer, pretrained=not loaded.random_init)
    return TaskModel.build(loaded.backbone, task, mlp_hidden)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
