"""Token classification (NER): one tag per word, entity-level metrics.

Words are split into subwords by the model's tokenizer (``is_split_into_words``); the
label of a word sits on its first subword and the other subwords are ignored in the loss
(``label_subwords: first``, ``-100``) or carry the same label (``all``).  Sentences longer
than ``max_length`` become overlapping windows (``stride`` subwords of overlap); at
prediction a word takes its tag from the window where it has the most context on both
sides.  Loss: token-level cross-entropy ``L = -1/|T| Σ_{t∈T} log softmax(W h_t)[y_t]`` over
the labelled positions ``T``.  Metrics: strict IOB2 entity precision/recall/F1 (seqeval;
Tjong Kim Sang & De Meulder 2003) overall and per type, with a sentence-bootstrap CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferkit.core.config import option
from transferkit.core.contracts import Batch
from transferkit.data.tagging import TaggedSentences, from_bioes, repair_iob2, to_bioes
from transferkit.evaluation.ner import entity_f1_ci, entity_metrics

IGNORE = -100


@dataclass
class TokenClassificationConfig:
    """Options of the token-classification task."""

    layer: int = option(-1, "encoder layer feeding the tag classifier (-1 = last)")
    dropout: float = option(0.1, "dropout before the tag classifier")
    label_subwords: Literal["first", "all"] = option("first", "subwords carrying a word's label in training: first (others ignored) or all")
    stride: int = option(32, "subword overlap between the windows of a sentence longer than data.max_length")
    scheme: Literal["iob2", "bioes"] = option("iob2", "tag scheme the model predicts (input in any scheme is converted)")
    token_column: int = option(0, "CoNLL column of the tokens (negative counts from the end)")
    tag_column: int = option(-1, "CoNLL column of the tags (negative counts from the end)")
    joiner: str = option(" ", "text between tokens when reporting character offsets ('' for Chinese characters)")


class TokenClassificationHead(nn.Module):
    """Dropout + a linear layer on every token state: (batch, seq, dim) -> (batch, seq, num_labels).

    ``project`` takes the token states directly (e.g. cached from a frozen encoder).
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.project(hidden)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, seq, dim) token states -> (batch, seq, num_labels) logits ``W h_t + b``."""
        return self.classifier(self.dropout(features))


class TokenClassificationTask:
    """Tag every word of a sentence (labels are the tag names, e.g. ``O``, ``B-PER``, ``I-PER``)."""

    name: ClassVar[str] = "token_classification"
    Config: ClassVar[type] = TokenClassificationConfig
    data_kind: ClassVar[str] = "tagged"
    primary_metric: ClassVar[str] = "f1"
    report_metrics: ClassVar[tuple[str, ...]] = ("f1", "precision", "recall")  # grid/report columns; the first is primary
    ragged_outputs: ClassVar[bool] = True

    def __init__(self, config: TokenClassificationConfig | None = None, labels: list[str] | None = None) -> None:
        self.config = config or TokenClassificationConfig()
        self.labels = list(labels or [])
        self._index = {name: i for i, name in enumerate(self.labels)}

    def model_tags(self, tags: list[str]) -> list[str]:
        """IOB2 tags in the scheme the model predicts."""
        return to_bioes(tags) if self.config.scheme == "bioes" else tags

    def build_head(self, hidden_size: int, mlp_hidden: int = 0, default_pooling: str = "mean") -> TokenClassificationHead:
        return TokenClassificationHead(hidden_size, len(self.labels), self.config.dropout)

    def featurize(self, examples: TaggedSentences, tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
        """Subword windows; ``_example``/``_words`` (first-subword word index, else -1) map predictions back."""
        stride = min(self.config.stride, max(max_length // 2 - 1, 0))
        encoded = tokenizer(examples.tokens, is_split_into_words=True, truncation=True, max_length=max_length,
                            stride=stride, return_overflowing_tokens=True, padding=False)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        owners = encoded["overflow_to_sample_mapping"]
        features = []
        for window, example in enumerate(owners):
            word_ids = np.array([-1 if w is None else w for w in encoded.word_ids(window)], dtype=np.int64)
            first = np.r_[True, word_ids[1:] != word_ids[:-1]] & (word_ids >= 0)
            feature = {k: encoded[k][window] for k in keys}
            feature["_example"], feature["_words"] = int(example), np.where(first, word_ids, -1)
            feature["_length"] = len(examples.tokens[example])
            if examples.tags is not None:
                feature["labels"] = self._window_labels(self.model_tags(examples.tags[example]), word_ids, first)
            features.append(feature)
        return features

    def _window_labels(self, tags: list[str], word_ids: np.ndarray, first: np.ndarray) -> list[int]:
        ids = np.array([self._index.get(tag, IGNORE) for tag in tags], dtype=np.int64)
        labelled = first if self.config.label_subwords == "first" else word_ids >= 0
        return np.where(labelled, ids[np.clip(word_ids, 0, None)], IGNORE).tolist()

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        logits = outputs["logits"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=IGNORE)

    def decode(self, outputs: list[np.ndarray], features: list[dict[str, Any]]) -> list[list[str]]:
        """Per-window (len, num_labels) logits -> IOB2 tags per sentence (vectorised over all windows)."""
        examples, words, tags, context = [], [], [], []
        for logits, feature in zip(outputs, features, strict=True):
            positions = np.nonzero(feature["_words"][: len(logits)] >= 0)[0]
            examples.append(np.full(len(positions), feature["_example"]))
            words.append(feature["_words"][positions])
            tags.append(logits[positions].argmax(-1))
            context.append(np.minimum(positions, len(logits) - 1 - positions))
        sizes = {f["_example"]: f["_length"] for f in features}
        example, word, tag, ctx = (np.concatenate(a) if a else np.zeros(0, np.int64) for a in (examples, words, tags, context))
        order = np.lexsort((-ctx, word, example))  # best-context window first within each (example, word)
        example, word, tag = example[order], word[order], tag[order]
        keep = np.r_[True, (example[1:] != example[:-1]) | (word[1:] != word[:-1])][: len(order)]
        example, word, tag = example[keep], word[keep], np.asarray(self.labels, dtype=object)[tag[keep]]
        bounds = np.searchsorted(example, np.arange(len(sizes) + 1))
        result = []
        for e in range(len(sizes)):  # one loop per sentence; words are filled by array indexing
            row = np.full(sizes[e], "O", dtype=object)
            row[word[bounds[e]:bounds[e + 1]]] = tag[bounds[e]:bounds[e + 1]]
            result.append(self._to_iob2(row.tolist()))
        return result

    def _to_iob2(self, tags: list[str]) -> list[str]:
        tags = from_bioes(tags) if self.config.scheme == "bioes" else tags
        return repair_iob2(tags)[0]

    def references(self, examples: TaggedSentences) -> list[list[str]]:
        return list(examples.tags or [])

    def metrics(self, predictions: list[list[str]], references: list[list[str]]) -> dict[str, Any]:
        metrics = entity_metrics(references, predictions)
        metrics["accuracy"] = metrics["token_accuracy"]
        return metrics

    def evaluate(self, predictions: list[list[str]], examples: TaggedSentences, seed: int = 0) -> dict[str, Any]:
        references = self.references(examples)
        metrics = self.metrics(predictions, references)
        metrics["ci95"] = entity_f1_ci(references, predictions, seed=seed)
        return metrics
