"""Single-label text and sentence-pair classification.

Loss: cross-entropy ``L = -log softmax(W·pool(h))[y]`` over the head's logits.
Metrics: accuracy, macro F1, ROC-AUC, confusion matrix, with percentile-bootstrap 95% CIs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from transferkit.core.config import DataConfig, option
from transferkit.core.contracts import Batch, Splits, TextExamples
from transferkit.data import LabelMap
from transferkit.data.output import prediction_records, write_predictions
from transferkit.data.stream import read_stream
from transferkit.data.task_splits import class_counts, load_text_splits, read_examples
from transferkit.data.truncation import encode_truncated
from transferkit.evaluation.bootstrap import bootstrap_ci
from transferkit.evaluation.metrics import classification_metrics
from transferkit.modules.heads import ClassificationHead
from transferkit.modules.task_model import BACKBONE_INPUTS
from transferkit.tasks.common import EncoderTask


@dataclass
class ClassificationConfig:
    """Options of the classification task (its head)."""

    pooling: Literal["auto", "mean", "cls", "max"] = option(
        "auto", "how token states become one vector: mean, [CLS], max, or auto (the encoder's own choice; mean for transformers)")
    layer: int = option(-1, "encoder layer feeding the head (-1 = last, 0 = embeddings)")
    dropout: float = option(0.1, "dropout before the classifier")
    normalize: bool | None = option(
        None, "L2-normalise the pooled features before the classifier, z/||z|| (null = the strategy's choice: true for "
              "contrastive, whose cosine loss trains directions only; false otherwise)")


class ClassificationTask(EncoderTask):
    """Predict one of ``labels`` for a text (or a text pair)."""

    name: ClassVar[str] = "classification"
    Config: ClassVar[type] = ClassificationConfig
    primary_metric: ClassVar[str] = "accuracy"
    report_metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "roc_auc")  # grid/report columns; the first is primary
    metric_titles: ClassVar[dict[str, str]] = {"accuracy": "accuracy", "macro_f1": "macro F1", "roc_auc": "ROC-AUC"}
    budget_unit: ClassVar[str] = "labels per class"
    feature_kind: ClassVar[str] = "pooled"
    input_forms: ClassVar[tuple[str, ...]] = ("text", "pair")

    def __init__(self, config: ClassificationConfig | None = None, labels: list[str] | None = None) -> None:
        self.config = config or ClassificationConfig()
        self.labels = list(labels or [])

    @classmethod
    def read_splits(cls, data: DataConfig, config: ClassificationConfig, seed: int) -> Splits:
        """Stratified eval split (unless ``data.eval``), ``budget`` = labels per class, test sets encoded alike; with
        ``data.stream``, the stages of a continual run (``data.stream.read_stream``, labels per ``continual.setting``)."""
        if data.stream is not None:
            return read_stream(data, data.stream_setting, seed)
        return load_text_splits(data, seed)

    def read(self, path: str, data: DataConfig, require_targets: bool = True) -> TextExamples:
        """One file with the configured columns; labels are encoded against this task's labels."""
        if not require_targets:  # prediction input: a label column, if any, is ignored
            return read_examples(path, dataclasses.replace(data, label_column="\x00"), None, require_labels=False)[0]
        return read_examples(path, data, LabelMap(self.labels))[0]

    def from_inputs(self, inputs: Sequence[str] | Sequence[tuple[str, str]]) -> TextExamples:
        """Texts (or (text, pair) tuples) given in Python."""
        items = list(inputs)
        if items and isinstance(items[0], (tuple, list)):
            return TextExamples([str(a) for a, _ in items], text_pairs=[str(b) for _, b in items])
        return TextExamples([str(text) for text in items])

    def input_texts(self, examples: TextExamples) -> list[str]:
        """The texts and, for pairs, the second texts."""
        return [*examples.texts, *(examples.text_pairs or [])]

    def data_summary(self, examples: TextExamples) -> dict[str, Any]:
        return {"training class counts": class_counts(examples, LabelMap(self.labels))}

    def build_head(self, backbone: Any, mlp_hidden: int = 0) -> ClassificationHead:
        """Head on ``backbone``'s states; with pooling ``auto``, the encoder's own choice (a word-vector encoder's
        ``default_pooling``), else mean pooling."""
        pooling = self.config.pooling
        if pooling == "auto":
            pooling = getattr(backbone, "default_pooling", "mean")  # a backbone attribute (word-vector encoders)
        return ClassificationHead(backbone.config.hidden_size, len(self.labels), pooling, self.config.dropout,
                                  mlp_hidden, normalize=bool(self.config.normalize))

    def featurize(self, examples: TextExamples, tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
        """Tokenise without padding (the collator pads each batch to its own longest); single long texts are
        read as prefixes where that gives the same ids (:func:`~transferkit.data.truncation.encode_truncated`)."""
        if examples.text_pairs is None:
            encoded = encode_truncated(tokenizer, examples.texts, max_length)
        else:
            encoded = tokenizer(examples.texts, examples.text_pairs, truncation=True, max_length=max_length,
                                padding=False)
        keys = [k for k in BACKBONE_INPUTS if k in encoded]
        features = [{k: encoded[k][i] for k in keys} for i in range(len(examples))]
        if examples.labels is not None:
            for feature, label in zip(features, examples.labels, strict=True):
                feature["labels"] = label
        return features

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs["logits"], batch["labels"])

    def decode(self, outputs: np.ndarray, features: Any = None, examples: Any = None, tokenizer: Any = None) -> np.ndarray:
        """(n, num_labels) logits -> (n, num_labels) probabilities."""
        return torch.softmax(torch.as_tensor(outputs, dtype=torch.float32), dim=-1).numpy()

    def references(self, examples: TextExamples) -> np.ndarray:
        return np.asarray(examples.labels)

    def metrics(self, probabilities: np.ndarray, references: Any) -> dict[str, Any]:
        return classification_metrics(np.asarray(references), probabilities, self.labels)

    def evaluate(self, probabilities: np.ndarray, examples: TextExamples, seed: int = 0) -> dict[str, Any]:
        """Metrics with percentile-bootstrap 95% CIs (1,000 resamples of the examples)."""
        references = self.references(examples)
        metrics = self.metrics(probabilities, references)
        metrics["ci95"] = bootstrap_ci(references, probabilities.argmax(axis=1), len(self.labels), seed=seed)
        return metrics

    def probabilities(self, predictions: np.ndarray) -> np.ndarray:
        return np.asarray(predictions)

    def present(self, probabilities: np.ndarray) -> list[str]:
        """The most probable label of each example."""
        return [self.labels[i] for i in np.asarray(probabilities).argmax(axis=1)]

    def prediction_records(self, probabilities: np.ndarray, examples: TextExamples) -> list[dict[str, Any]]:
        """``text``, ``label`` and ``probabilities`` (label -> probability) per example."""
        return prediction_records(examples.texts, probabilities, self.labels)

    def write_predictions(self, path: str, probabilities: np.ndarray, examples: TextExamples) -> int:
        """``text``, ``label`` and per-class probabilities per row (.jsonl, .csv or .tsv)."""
        write_predictions(path, examples.texts, probabilities, self.labels)
        return len(examples)
