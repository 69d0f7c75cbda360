"""``EncoderThenHead``: the plan of strategies that train the encoder with a loss of their own (contrastive pairs,
prototypical episodes) and fit the task head only afterwards, in closed form.

    fit(ctx):  built = build(ctx, source_model(ctx))     the head gets no gradient and no optimizer state
               fit   = train(ctx, built, features, None)  the strategy's own loss; no per-epoch evaluation
               Z     = trained encoder's pooled features of the training rows (not cached: the weights changed)
               fit_head(model, Z, y)                       e.g. logistic regression, or the class prototypes

The head is unfitted during training, so nothing is evaluated or selected then: the last step is kept.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from torch import nn

from transferkit.core.contracts import Fitted, RunContext
from transferkit.core.errors import UserError
from transferkit.strategies.common import optimizer_groups, set_trainable
from transferkit.strategies.neural import Built, NeuralStrategy


class EncoderThenHead(NeuralStrategy):
    """Only the encoder trains, on the strategy's own loss; the head is fitted in closed form afterwards."""

    supports: ClassVar[frozenset[str]] = frozenset({"classification"})

    def fit(self, ctx: RunContext) -> Fitted:
        built = self.build(ctx, self.source_model(ctx))
        fit = self.train(ctx, built, self.features(ctx, built), None)
        self.fit_head_after_training(ctx, built)
        return self.finish(ctx, built, fit)

    def fit_head_after_training(self, ctx: RunContext, built: Built) -> None:
        """The trained encoder's pooled features of the training set, then :meth:`fit_head` on them."""
        if ctx.task.feature_kind != "pooled":
            raise UserError(f"strategy '{self.name}' fits a head on pooled features; task '{ctx.task.name}' has none")
        encoder = built.predictor.text_encoder("trained")
        train = ctx.splits.train
        features = encoder.encode(train.texts, train.text_pairs)  # (n, dim) float32
        self.fit_head(built.model, features, np.asarray(train.labels), ctx.config.training.seed)

    def fit_head(self, model: Any, features: np.ndarray, labels: np.ndarray, seed: int) -> None:
        """Write the head from the trained encoder's pooled ``features`` (n, dim) and their ``labels``."""
        raise NotImplementedError(f"strategy '{self.name}' defines no fit_head")

    def prepare(self, model: nn.Module) -> nn.Module:
        set_trainable(list(model.named_parameters()), True)
        set_trainable(list(model.head.named_parameters()), False)
        return model

    def param_groups(self, model: nn.Module, learning_rate: float, head_learning_rate: float,
                     weight_decay: float) -> list[dict[str, Any]]:
        body = [(n, p) for n, p in model.backbone.named_parameters() if p.requires_grad]
        return optimizer_groups([("body", body)], {"body": learning_rate}, weight_decay)
