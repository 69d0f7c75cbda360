"""Extractive question answering (SQuAD v1.1 style): predict the answer span in the context.

Each (question, context) becomes one or more windows of ``max_length`` subwords (the
context is cut into overlapping pieces, ``doc_stride`` subwords apart), with offset
mappings back to context characters.  A span head gives start and end logits ``s_i, e_j``
per token (Devlin et al. 2019, §4.2); training minimises
``L = ½ (CE(s, y_start) + CE(e, y_end))`` where a window that does not contain the answer
points at [CLS].  Decoding takes the ``n_best`` top starts and ends per window, keeps spans
inside the context with ``j ≥ i`` and at most ``max_answer_length`` tokens, and returns the
best ``s_i + e_j`` over all windows of a question.  Metrics: the official SQuAD exact match
and token F1 (max over references; character F1 for Chinese).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from transferkit.core.config import DataConfig, option
from transferkit.core.contracts import Batch, Splits
from transferkit.data.output import write_records
from transferkit.data.qa import QAExamples, read_squad
from transferkit.data.task_splits import load_qa_splits
from transferkit.evaluation.qa import squad_metrics
from transferkit.modules.heads import TokenHead
from transferkit.modules.task_model import BACKBONE_INPUTS
from transferkit.tasks.common import EncoderTask

SQUAD_FORMATS = {"squad": "json", "jsonl": "jsonl"}


@dataclass
class QuestionAnsweringConfig:
    """Options of the extractive QA task."""

    layer: int = option(-1, "encoder layer feeding the span head (-1 = last)")
    dropout: float = option(0.1, "dropout before the span head")
    doc_stride: int = option(128, "subword overlap between consecutive windows of a long context")
    max_answer_length: int = option(30, "longest answer considered at decoding, in subword tokens")
    n_best: int = option(20, "start and end candidates per window considered at decoding")
    language: Literal["auto", "en", "zh"] = option("auto", "metric language: en = SQuAD token F1, zh = character F1")


class QuestionAnsweringTask(EncoderTask):
    """Find the answer to a question as a span of its context."""

    name: ClassVar[str] = "question_answering"
    Config: ClassVar[type] = QuestionAnsweringConfig
    primary_metric: ClassVar[str] = "f1"
    report_metrics: ClassVar[tuple[str, ...]] = ("f1", "exact_match")  # grid/report columns; the first is primary
    metric_titles: ClassVar[dict[str, str]] = {"f1": "F1", "exact_match": "exact match"}
    budget_unit: ClassVar[str] = "training questions"
    feature_kind: ClassVar[str] = "tokens"
    input_forms: ClassVar[tuple[str, ...]] = ("question_context",)

    def __init__(self, config: QuestionAnsweringConfig | None = None, labels: list[str] | None = None) -> None:
        self.config = config or QuestionAnsweringConfig()
        self.labels = list(labels or ["start", "end"])

    @classmethod
    def read_splits(cls, data: DataConfig, config: QuestionAnsweringConfig, seed: int) -> Splits:
        """Questions; without ``data.eval`` whole articles (titles) are held out, so no context is shared."""
        return load_qa_splits(data, seed)

    def read(self, path: str, data: DataConfig, require_targets: bool = True) -> QAExamples:
        """SQuAD v1.1 JSON or JSON Lines (answers, if any, ignored unless ``require_targets``)."""
        return read_squad(path, SQUAD_FORMATS.get(data.format, "auto"), require_answers=require_targets)

    def from_inputs(self, inputs: Sequence[tuple[str, str]]) -> QAExamples:
        """(question, context) pairs given in Python."""
        pairs = [(str(q), str(c)) for q, c in inputs]
        return QAExamples([str(i) for i in range(len(pairs))], [q for q, _ in pairs], [c for _, c in pairs], None,
                          [""] * len(pairs))

    def input_texts(self, examples: QAExamples) -> list[str]:
        """Questions, then each distinct context once."""
        return [*examples.questions, *dict.fromkeys(examples.contexts)]

    def build_head(self, backbone: Any, mlp_hidden: int = 0) -> TokenHead:
        """Start and end logits on every token state (``mlp_hidden`` does not apply to per-token heads)."""
        return TokenHead(backbone.config.hidden_size, 2, self.config.dropout)

    def transformers_head(self, model: Any) -> tuple[str, dict[str, str]] | None:
        """``AutoModelForQuestionAnswering`` (e.g. ``BertForQuestionAnswering``: ``bert`` + ``qa_outputs``, start and
        end logits = outputs 0 and 1) when the span head reads the last layer of a plain transformers encoder."""
        from transformers import PreTrainedModel

        if model.layer != -1 or not isinstance(model.backbone, PreTrainedModel):
            return None
        return "AutoModelForQuestionAnswering", {"backbone.": f"{model.backbone.base_model_prefix}.",
                                                 "head.classifier.": "qa_outputs."}

    def featurize(self, examples: QAExamples, tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
        """Windows over each context; ``_offsets`` maps context tokens to characters (-1 elsewhere)."""
        stride = min(self.config.doc_stride, max(max_length // 2, 1))
        encoded = tokenizer(examples.questions, examples.contexts, truncation="only_second", max_length=max_length,
                            stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
        keys = [k for k in BACKBONE_INPUTS if k in encoded]
        features = []
        for window, example in enumerate(encoded["overflow_to_sample_mapping"]):
            in_context = np.array([s == 1 for s in encoded.sequence_ids(window)])
            offsets = np.where(in_context[:, None], np.asarray(encoded["offset_mapping"][window]), -1)
            feature = {k: encoded[k][window] for k in keys}
            feature["_example"], feature["_offsets"] = int(example), offsets
            if examples.answers is not None:
                feature["labels"] = self._span(offsets, examples.answers[example][0])
            features.append(feature)
        return features

    @staticmethod
    def _span(offsets: np.ndarray, answer: dict[str, Any]) -> list[int]:
        """[start token, end token] of the first reference in this window, or [0, 0] ([CLS]) if outside it."""
        start_char = int(answer["answer_start"])
        end_char = start_char + len(answer["text"])
        inside = offsets[:, 0] >= 0
        starts = np.nonzero(inside & (offsets[:, 0] <= start_char) & (offsets[:, 1] > start_char))[0]
        ends = np.nonzero(inside & (offsets[:, 0] < end_char) & (offsets[:, 1] >= end_char))[0]
        if not len(starts) or not len(ends):
            return [0, 0]
        return [int(starts[0]), int(ends[-1])]

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        logits = outputs["logits"]  # (batch, seq, 2)
        start, end = batch["labels"][:, 0], batch["labels"][:, 1]
        return (F.cross_entropy(logits[..., 0], start) + F.cross_entropy(logits[..., 1], end)) / 2

    def _best_in_window(self, logits: np.ndarray, offsets: np.ndarray) -> tuple[float, int, int] | None:
        """(score, start char, end char) of the best valid span of one window (vectorised over n_best²)."""
        context = np.nonzero(offsets[: len(logits), 0] >= 0)[0]
        if not len(context):
            return None
        k = min(self.config.n_best, len(context))
        starts = context[np.argsort(-logits[context, 0])[:k]]
        ends = context[np.argsort(-logits[context, 1])[:k]]
        scores = logits[starts, 0][:, None] + logits[ends, 1][None, :]
        length = ends[None, :] - starts[:, None] + 1
        scores = np.where((length >= 1) & (length <= self.config.max_answer_length), scores, -np.inf)
        i, j = np.unravel_index(np.argmax(scores), scores.shape)
        if not np.isfinite(scores[i, j]):
            return None
        return float(scores[i, j]), int(offsets[starts[i], 0]), int(offsets[ends[j], 1])

    def decode(self, outputs: list[np.ndarray], features: list[dict[str, Any]], examples: QAExamples | None = None,
               tokenizer: Any = None) -> list[dict[str, Any]]:
        """Best span per question over its windows: ``{"score", "start", "end"}`` (+ ``text`` given the examples)."""
        best: dict[int, tuple[float, int, int]] = {}
        for logits, feature in zip(outputs, features, strict=True):
            found = self._best_in_window(logits, feature["_offsets"])
            example = feature["_example"]
            if found is not None and (example not in best or found[0] > best[example][0]):
                best[example] = found
        n = 1 + max((f["_example"] for f in features), default=-1)
        answers = [{"score": best[e][0], "start": best[e][1], "end": best[e][2]} if e in best
                   else {"score": float("-inf"), "start": 0, "end": 0} for e in range(n)]
        if examples is not None:
            for answer, context in zip(answers, examples.contexts, strict=True):
                answer["text"] = context[answer["start"]:answer["end"]]
        return answers

    def references(self, examples: QAExamples) -> dict[str, Any]:
        return {"contexts": examples.contexts, "answers": [[a["text"] for a in refs] for refs in examples.answers or []]}

    def metrics(self, predictions: list[dict[str, Any]], references: dict[str, Any], n_resamples: int = 200,
                seed: int = 0) -> dict[str, Any]:
        texts = [ctx[p["start"]:p["end"]] for p, ctx in zip(predictions, references["contexts"], strict=True)]
        return squad_metrics(texts, references["answers"], language=self.config.language, n_resamples=n_resamples,
                             seed=seed)

    def evaluate(self, predictions: list[dict[str, Any]], examples: QAExamples, seed: int = 0) -> dict[str, Any]:
        metrics = self.metrics(predictions, self.references(examples), n_resamples=1000, seed=seed)
        metrics["ci95"] = {"f1": metrics.get("f1_ci"), "exact_match": metrics.get("exact_match_ci")}
        return metrics

    def prediction_records(self, predictions: list[dict[str, Any]], examples: QAExamples) -> list[dict[str, Any]]:
        """The best answer span per question: id, question, text, score and character offsets into its context."""
        return [{"id": qid, "question": question, **answer}
                for qid, question, answer in zip(examples.ids, examples.questions, predictions, strict=True)]

    def write_predictions(self, path: str, predictions: list[dict[str, Any]], examples: QAExamples) -> int:
        """:meth:`prediction_records` as JSON Lines."""
        write_records(path, self.prediction_records(predictions, examples))
        return len(predictions)
