"""``TaskModel``: a pretrained backbone plus task heads, the object strategies adapt."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from transferkit.modules.heads import ColumnsHead

BACKBONE_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
"""The batch keys a backbone takes; everything else in a batch is for the head, the loss or decoding."""

AUXILIARY = "auxiliary"
"""Name of the module dict of training-only modules (e.g. a domain discriminator): never saved."""


class TaskModel(nn.Module):
    """Backbone (a Hugging Face base model) + the primary task's head (+ more heads, + training-only modules).

    ``forward(batch)`` returns ``{"logits": ..., "features": ...}``: the head's logits and the
    features it computed them from (pooled (batch, dim) for classification, token states
    (batch, seq, dim) for per-token heads), so a strategy can add a loss on the features
    (domain alignment, distillation) without a second encoder pass.

    Args:
        backbone: e.g. ``BertModel``; returns token states.
        head: the primary task's head, called as ``head.features(hidden, attention_mask)`` then
            ``head.project(features)``; ``project`` alone serves cached frozen-encoder features.
        task: the primary task (a plain attribute: it owns the loss and decoding).
        layer: which hidden layer feeds the heads (-1 = last; 0 = embeddings output).

    More heads (multi-task learning) are added with :meth:`add_head` and chosen by
    ``forward(batch, task=name)``; training-only modules with :meth:`add_auxiliary` live under
    ``auxiliary.`` and are left out of the saved model (:meth:`saved_state`).  A teacher is not a
    module of the model at all: it lives on the strategy.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, task: Any, layer: int = -1) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.task = task
        self.layer = layer
        self.heads = nn.ModuleDict()
        self.tasks: dict[str, Any] = {}
        self.auxiliary = nn.ModuleDict()

    @classmethod
    def build(cls, backbone: nn.Module, task: Any, mlp_hidden: int = 0) -> TaskModel:
        """Backbone + the task's head on it (``task.build_head``)."""
        return cls(backbone, task.build_head(backbone, mlp_hidden), task, layer=task.config.layer)

    def add_head(self, task: Any, mlp_hidden: int = 0, name: str | None = None) -> None:
        """Another task's head on the same encoder, keyed by ``name`` (default: the task's name; two tasks of
        one kind, e.g. two classification datasets with their own labels, need names of their own)."""
        key = name or task.name
        self.heads[key] = task.build_head(self.backbone, mlp_hidden)
        self.tasks[key] = task

    def for_task(self, name: str) -> TaskModel:
        """A view predicting task ``name``: the same backbone (shared, not copied) with that task's head as its primary."""
        if name not in self.heads:
            raise KeyError(name)
        return TaskModel(self.backbone, self.heads[name], self.tasks[name], self.layer)

    def for_columns(self, task: Any, columns: list[int]) -> TaskModel:
        """A view predicting ``task``, whose labels are the primary head's outputs ``columns`` (a stage of a stream
        learned in the task setting: its rows of the shared output layer); same backbone and weights, not copied."""
        return TaskModel(self.backbone, ColumnsHead(self.head, columns), task, self.layer)

    def add_auxiliary(self, name: str, module: nn.Module) -> None:
        """A module that trains with the model but is not part of it (never saved)."""
        self.auxiliary[name] = module

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters the source checkpoint did not provide beyond the heads (none for an encoder + head)."""
        return []

    def head_for(self, task: str | None) -> nn.Module:
        return self.head if task is None or task == self.task.name else self.heads[task]

    def task_for(self, task: str | None) -> Any:
        return self.task if task is None or task == self.task.name else self.tasks[task]

    def hidden_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token states of the chosen layer: (batch, seq, dim)."""
        inputs = {k: batch[k] for k in BACKBONE_INPUTS if k in batch}
        if self.layer == -1:
            return self.backbone(**inputs).last_hidden_state
        return self.backbone(**inputs, output_hidden_states=True).hidden_states[self.layer]

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The primary head's features (pooled (batch, dim) for classification): what a frozen encoder caches."""
        return self.head.features(self.hidden_states(batch), batch["attention_mask"])

    def forward(self, batch: dict[str, torch.Tensor], task: str | None = None) -> dict[str, torch.Tensor]:
        head = self.head_for(task)
        if "features" in batch:  # cached encoder outputs (pooled or per token): skip the backbone entirely
            features = batch["features"]
        else:
            features = head.features(self.hidden_states(batch), batch["attention_mask"])
        return {"logits": head.project(features), "features": features}

    def saved_state(self) -> dict[str, torch.Tensor]:
        """The weights a saved model holds: everything but the training-only ``auxiliary`` modules."""
        return {k: v.detach().contiguous().clone() for k, v in self.state_dict().items()
                if not k.startswith(AUXILIARY + ".")}


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
