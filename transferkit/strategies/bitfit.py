"""BitFit: train only the bias terms of the encoder, plus the task head.

Ben Zaken, Ravfogel & Goldberg 2022, "BitFit: Simple Parameter-efficient Fine-tuning for
Transformer-based Masked Language-models": every weight matrix stays at its pretrained
value; the biases ``b`` in ``h = W₀x + b`` (attention, feed-forward and LayerNorm) move.
About 0.1% of BERT's parameters train; the run directory keeps only those and the head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Losses
from transferkit.strategies.common import NoCallbacks, optimizer_groups, set_trainable, task_loss


@dataclass
class BitfitConfig:
    include_layer_norm: bool = option(True, "also train LayerNorm biases (as the paper does)")


class Bitfit(NoCallbacks):
    """Frozen weights, trainable biases: the tiniest transfer baseline that still adapts the encoder."""

    name: ClassVar[str] = "bitfit"
    supports: ClassVar[frozenset[str]] = frozenset({"classification", "token_classification", "question_answering"})
    requires: ClassVar[frozenset[str]] = frozenset()
    kind: ClassVar[str] = "neural"
    random_init: ClassVar[bool] = False
    saves_delta: ClassVar[bool] = True
    Config: ClassVar[type] = BitfitConfig

    def __init__(self, config: BitfitConfig | None = None) -> None:
        self.config = config or BitfitConfig()

    def biases(self, model: Any) -> list[tuple[str, Any]]:
        """The encoder's bias parameters (LayerNorm ones only if configured)."""
        def wanted(name: str) -> bool:
            return name.endswith("bias") and (self.config.include_layer_norm or "LayerNorm" not in name)

        return [(n, p) for n, p in model.backbone.named_parameters() if wanted(n)]

    def prepare(self, model: Any) -> Any:
        set_trainable(list(model.named_parameters()), False)
        set_trainable(self.biases(model), True)
        set_trainable(list(model.head.named_parameters()), True)
        return model

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list[dict]:
        groups = [("biases", self.biases(model)), ("head", list(model.head.named_parameters()))]
        return optimizer_groups(groups, {"biases": learning_rate, "head": head_learning_rate}, weight_decay)

    def loss(self, model: Any, batch: Batch) -> Losses:
        return task_loss(model, batch)
