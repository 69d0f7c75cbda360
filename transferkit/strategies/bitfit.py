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
from transferkit.strategies.common import optimizer_groups, set_trainable
from transferkit.strategies.neural import DeltaStrategy


@dataclass
class BitfitConfig:
    include_layer_norm: bool = option(True, "also train LayerNorm biases (as the paper does)")


class Bitfit(DeltaStrategy):
    """Frozen weights, trainable biases: the tiniest transfer baseline that still adapts the encoder."""

    name: ClassVar[str] = "bitfit"
    supports: ClassVar[frozenset[str]] = frozenset({"classification", "token_classification", "question_answering"})
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 1e-3}  # the paper's range is 1e-4..1e-3
    Config: ClassVar[type] = BitfitConfig

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
