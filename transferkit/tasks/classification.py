"""Single-label text and sentence-pair classification.

Loss: cross-entropy ``L = -log softmax(W·pool(h))[y]`` over the head's logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from transferkit.core.config import option
from transferkit.core.contracts import Batch, TextExamples
from transferkit.evaluation.metrics import classification_metrics
from transferkit.modules.heads import ClassificationHead


@dataclass
class ClassificationConfig:
    """Options of the classification task (its head)."""

    pooling: Literal["auto", "mean", "cls", "max"] = option(
        "auto", "how token states become one vector: mean, [CLS], max, or auto (the encoder's own choice; mean for transformers)")
    layer: int = option(-1, "encoder layer feeding the head (-1 = last, 0 = embeddings)")
    dropout: float = option(0.1, "dropout before the classifier")


class ClassificationTask:
    """Predict one of ``labels`` for a text (or a text pair)."""

    name: ClassVar[str] = "classification"
    Config: ClassVar[type] = ClassificationConfig
    data_kind: ClassVar[str] = "text"
    primary_metric: ClassVar[str] = "accuracy"
    report_metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "roc_auc")  # grid/report columns; the first is primary
    ragged_outputs: ClassVar[bool] = False

    def __init__(self, config: ClassificationConfig | None = None, labels: list[str] | None = None) -> None:
        self.config = config or ClassificationConfig()
        self.labels = list(labels or [])

    def build_head(self, hidden_size: int, mlp_hidden: int = 0, default_pooling: str = "mean") -> ClassificationHead:
        """Head for ``hidden_size`` states; ``default_pooling`` is the encoder's choice, used when pooling is auto."""
        pooling = default_pooling if self.config.pooling == "auto" else self.config.pooling
        return ClassificationHead(hidden_size, len(self.labels), pooling, self.config.dropout, mlp_hidden)

    def featurize(self, examples: TextExamples, tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
        """Tokenise without padding (the collator pads each batch to its own longest)."""
        encoded = tokenizer(
            examples.texts, examples.text_pairs, truncation=True, max_length=max_length, padding=False
        )
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        features = [{k: encoded[k][i] for k in keys} for i in range(len(examples))]
        if examples.labels is not None:
            for feature, label in zip(features, examples.labels, strict=True):
                feature["labels"] = label
        return features

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs["logits"], batch["labels"])

    def decode(self, logits: np.ndarray, features: Any = None) -> np.ndarray:
        """(n, num_labels) logits -> (n, num_labels) probabilities."""
        return torch.softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1).numpy()

    def references(self, examples: TextExamples) -> np.ndarray:
        return np.asarray(examples.labels)

    def metrics(self, probabilities: np.ndarray, references: Any) -> dict[str, Any]:
        return classification_metrics(np.asarray(references), probabilities, self.labels)
