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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from transferkit.core.config import DataConfig, option
from transferkit.core.contracts import IGNORE_INDEX, Batch, Splits
from transferkit.data.output import write_records
from transferkit.data.tagging import TaggedSentences, entities_with_offsets, from_bioes, repair_iob2, to_bioes
from transferkit.data.task_splits import load_tagged_splits, read_tagged_file
from transferkit.evaluation.ner import entity_f1_ci, entity_metrics
from transferkit.modules.heads import TokenHead
from transferkit.modules.task_model import BACKBONE_INPUTS
from transferkit.tasks.common import EncoderTask


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


def bare_marker_ids(tokenizer: Any) -> np.ndarray:
    """Id of the vocabulary's bare word-start marker (SentencePiece ``▁``, else byte-level BPE ``Ġ``); none for WordPiece."""
    for marker in ("\u2581", "\u0120"):
        found = tokenizer.convert_tokens_to_ids(marker)
        if found is not None and found != tokenizer.unk_token_id:
            return np.array([found], dtype=np.int64)
    return np.zeros(0, dtype=np.int64)


class TokenClassificationTask(EncoderTask):
    """Tag every word of a sentence (labels are the tag names, e.g. ``O``, ``B-PER``, ``I-PER``)."""

    name: ClassVar[str] = "token_classification"
    Config: ClassVar[type] = TokenClassificationConfig
    primary_metric: ClassVar[str] = "f1"
    report_metrics: ClassVar[tuple[str, ...]] = ("f1", "precision", "recall")  # grid/report columns; the first is primary
    metric_titles: ClassVar[dict[str, str]] = {"f1": "entity F1", "precision": "entity precision",
                                               "recall": "entity recall"}
    budget_unit: ClassVar[str] = "training sentences"
    feature_kind: ClassVar[str] = "tokens"
    input_forms: ClassVar[tuple[str, ...]] = ("tokens", "text")

    def __init__(self, config: TokenClassificationConfig | None = None, labels: list[str] | None = None) -> None:
        self.config = config or TokenClassificationConfig()
        self.labels = list(labels or [])
        self._index = {name: i for i, name in enumerate(self.labels)}

    def model_tags(self, tags: list[str]) -> list[str]:
        """IOB2 tags in the scheme the model predicts."""
        return to_bioes(tags) if self.config.scheme == "bioes" else tags

    @classmethod
    def read_splits(cls, data: DataConfig, config: TokenClassificationConfig, seed: int) -> Splits:
        """Tagged sentences; without ``data.eval`` a seeded random ``eval_fraction`` of sentences is held out;
        the labels are ``O`` + B-/I- (B-/I-/E-/S-) of every entity type in the training tags."""
        return load_tagged_splits(data, seed, config)

    def read(self, path: str, data: DataConfig, require_targets: bool = True) -> TaggedSentences:
        """CoNLL / Chinese BIO / MSRA / JSONL sentences (tags, if any, ignored unless ``require_targets``)."""
        config = self.config if require_targets else dataclasses.replace(self.config, tag_column=None)
        return read_tagged_file(path, data, config)

    def from_inputs(self, inputs: Sequence[str] | Sequence[Sequence[str]]) -> TaggedSentences:
        """Sentences given in Python: token lists, or strings split on whitespace (characters when joiner is '')."""
        def tokens(item: Any) -> list[str]:
            if not isinstance(item, str):
                return [str(token) for token in item]
            return list(item.replace(" ", "")) if self.config.joiner == "" else item.split()

        return TaggedSentences([tokens(item) for item in inputs])

    def input_texts(self, examples: TaggedSentences) -> list[str]:
        """Each sentence's tokens joined by spaces (as the tokenizer reads words given ``is_split_into_words``)."""
        return [" ".join(tokens) for tokens in examples.tokens]

    def build_head(self, backbone: Any, mlp_hidden: int = 0) -> TokenHead:
        """A linear tag classifier on every token state (``mlp_hidden`` does not apply to per-token heads)."""
        return TokenHead(backbone.config.hidden_size, len(self.labels), self.config.dropout)

    def transformers_head(self, model: Any) -> tuple[str, dict[str, str]] | None:
        """``AutoModelForTokenClassification`` (e.g. ``BertForTokenClassification``: ``bert`` + dropout + ``classifier``)
        when the tags are read off the last layer of a plain transformers encoder (not peft-wrapped)."""
        from transformers import PreTrainedModel

        if model.layer != -1 or not isinstance(model.backbone, PreTrainedModel):
            return None
        return "AutoModelForTokenClassification", {"backbone.": f"{model.backbone.base_model_prefix}.",
                                                   "head.classifier.": "classifier."}

    def featurize(self, examples: TaggedSentences, tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
        """Subword windows; ``_example``/``_words`` (first-subword word index, else -1) map predictions back."""
        stride = min(self.config.stride, max(max_length // 2 - 1, 0))
        encoded = tokenizer(examples.tokens, is_split_into_words=True, truncation=True, max_length=max_length,
                            stride=stride, return_overflowing_tokens=True, padding=False)
        keys = [k for k in BACKBONE_INPUTS if k in encoded]
        owners = encoded["overflow_to_sample_mapping"]
        markers = bare_marker_ids(tokenizer)
        features = []
        for window, example in enumerate(owners):
            word_ids = np.array([-1 if w is None else w for w in encoded.word_ids(window)], dtype=np.int64)
            keep = ~(np.isin(encoded["input_ids"][window], markers) & (word_ids >= 0)
                     & (word_ids == np.r_[word_ids[1:], -1]))  # a marker followed by more of its word
            word_ids = word_ids[keep]
            first = np.r_[True, word_ids[1:] != word_ids[:-1]] & (word_ids >= 0)
            if keep.all():  # WordPiece windows have no markers: the encoding passes through untouched
                feature = {k: encoded[k][window] for k in keys}
            else:
                feature = {k: np.asarray(encoded[k][window])[keep].tolist() for k in keys}
            feature["_example"], feature["_words"] = int(example), np.where(first, word_ids, -1)
            feature["_length"] = len(examples.tokens[example])
            if examples.tags is not None:
                feature["labels"] = self._window_labels(self.model_tags(examples.tags[example]), word_ids, first)
            features.append(feature)
        return features

    def _window_labels(self, tags: list[str], word_ids: np.ndarray, first: np.ndarray) -> list[int]:
        ids = np.array([self._index.get(tag, IGNORE_INDEX) for tag in tags], dtype=np.int64)
        labelled = first if self.config.label_subwords == "first" else word_ids >= 0
        return np.where(labelled, ids[np.clip(word_ids, 0, None)], IGNORE_INDEX).tolist()

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        logits = outputs["logits"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=IGNORE_INDEX)

    def decode(self, outputs: list[np.ndarray], features: list[dict[str, Any]], examples: Any = None,
               tokenizer: Any = None) -> list[list[str]]:
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

    def prediction_records(self, predictions: list[list[str]], examples: TaggedSentences) -> list[dict[str, Any]]:
        """Tokens, tags and entities (character offsets into the ``joiner``-joined tokens) per sentence."""
        return [{"tokens": tokens, "tags": tags, "entities": entities_with_offsets(tokens, tags, self.config.joiner)}
                for tokens, tags in zip(examples.tokens, predictions, strict=True)]

    def write_predictions(self, path: str, predictions: list[list[str]], examples: TaggedSentences) -> int:
        """:meth:`prediction_records` as JSON Lines."""
        write_records(path, self.prediction_records(predictions, examples))
        return len(predictions)
