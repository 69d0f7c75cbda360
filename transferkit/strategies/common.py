"""Pieces several strategies share: parameter groups and freezing."""

from __future__ import annotations

from typing import Any

from torch import nn

from transferkit.models.layers import layer_groups

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def named_groups(model: Any) -> list[tuple[str, list[tuple[str, nn.Parameter]]]]:
    """Backbone layer groups bottom -> top, then the head: [(name, [(param_name, param)])]."""
    groups = [(g.name, list(g.named_parameters())) for g in layer_groups(model.backbone)]
    return [*groups, ("head", list(model.head.named_parameters()))]


def set_trainable(params: list[tuple[str, nn.Parameter]], trainable: bool) -> None:
    for _, param in params:
        param.requires_grad_(trainable)


def optimizer_groups(
    groups: list[tuple[str, list[tuple[str, nn.Parameter]]]],
    learning_rates: dict[str, float],
    weight_decay: float,
) -> list[dict[str, Any]]:
    """AdamW groups: one per (layer group, decay/no-decay); biases and norms get no decay.

    Groups missing from ``learning_rates`` are left out, so frozen layers carry no
    optimizer state at all.
    """
    result = []
    for name, params in groups:
        if name not in learning_rates:
            continue
        decay = [p for n, p in params if not n.endswith(NO_DECAY)]
        plain = [p for n, p in params if n.endswith(NO_DECAY)]
        for suffix, members, wd in (("", decay, weight_decay), (".no_decay", plain, 0.0)):
            if members:
                result.append({"name": name + suffix, "params": members, "lr": learning_rates[name], "weight_decay": wd})
    return result
