"""Pieces several strategies share: parameter groups, freezing, the plain task loss."""

from __future__ import annotations

from typing import Any

from torch import nn

from transferkit.core.contracts import Batch, Losses
from transferkit.models.layers import layer_groups
from transferkit.models.loading import LoadedModel, load_backbone

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


def task_loss(model: Any, batch: Batch) -> Losses:
    """The task's own loss on the model's outputs (what most strategies minimise)."""
    loss = model.task.loss(model(batch), batch)
    return Losses(total=loss, parts={"task": float(loss.detach())})


class NoCallbacks:
    """Mixin for strategies without training-time behaviour."""

    def callbacks(self) -> list:
        return []


def load_source(strategy: Any, model_ref: str, train: Any, seq2seq: bool = False) -> LoadedModel:
    """The source model a strategy starts from.

    A strategy that builds its own encoder (e.g. ``word_vectors``, whose vocabulary comes
    from the training texts) provides ``build_backbone(model_ref, train)``; every other
    strategy gets the pretrained (or, for ``random_init``, re-initialised) transformer;
    ``seq2seq`` asks for the whole encoder-decoder LM when the checkpoint is one.
    """
    build = getattr(strategy, "build_backbone", None)
    if build is not None:
        return build(model_ref, train)
    return load_backbone(model_ref, random_init=strategy.random_init, seq2seq=seq2seq)
