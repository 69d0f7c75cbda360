"""Pieces several strategies share: parameter groups, freezing, a closed-form logistic head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from transferkit.core.config import option
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


def body_and_head_groups(model: Any, learning_rate: float, head_learning_rate: float,
                         weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups of every trainable weight: ``model.head``'s at ``head_learning_rate``, all others (``body``) at
    ``learning_rate``; frozen parameters are left out."""
    head = [(n, p) for n, p in model.head.named_parameters() if p.requires_grad]
    head_ids = {id(p) for _, p in head}
    body = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in head_ids]
    return optimizer_groups([("body", body), ("head", head)], {"body": learning_rate, "head": head_learning_rate},
                            weight_decay)


def auxiliary_groups(model: Any, learning_rate: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups of the model's auxiliary modules (``model.auxiliary``: an MLM head, a discriminator, a projection)
    at ``learning_rate``, with the usual decay split."""
    return optimizer_groups([("auxiliary", list(model.auxiliary.named_parameters()))], {"auxiliary": learning_rate},
                            weight_decay)


@dataclass
class LogisticHeadConfig:
    """The options of :func:`fit_logistic_head`, shared by the configs of the strategies that fit it."""

    C: float = option(1.0, "inverse L2 regularisation strength of the logistic-regression head")
    max_iter: int = option(2000, "maximum L-BFGS iterations of the logistic-regression head")


def fit_logistic_head(model: Any, features: np.ndarray, labels: np.ndarray, C: float, max_iter: int, seed: int) -> None:
    """Multinomial logistic regression (scikit-learn, L2, inverse strength ``C``) on ``features`` (n, dim),
    copied into the model's linear output layer so ``softmax(W z + b)`` reproduces ``predict_proba`` exactly."""
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    classifier.fit(features, labels)
    coef, intercept = classifier.coef_, classifier.intercept_  # (k, dim), (k,); k = 1 when binary
    if coef.shape[0] == 1:  # sigmoid(w·z + b) == softmax([-w/2, w/2]·z + [-b/2, b/2])
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    layer = model.head.output_layer()
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(coef, dtype=layer.weight.dtype))
        layer.bias.copy_(torch.as_tensor(intercept, dtype=layer.bias.dtype))
