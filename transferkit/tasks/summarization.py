"""Abstractive summarization (any text-to-text generation): document in, summary out.

The model is an encoder–decoder (:mod:`transferkit.modules.seq2seq`): a seq2seq checkpoint
as it is, or an encoder checkpoint warm-started into BERT2BERT (Rothe et al. 2020).
Training minimises token cross-entropy under teacher forcing,
``L = -(1/|y|) Σ_t log p(y_t | y_<t, x)`` (optionally label-smoothed, Szegedy et al. 2016).
Decoding is beam search with a length penalty: a hypothesis scores
``log p(y|x) / |y|^α`` (α = ``length_penalty``), at most ``max_target_length`` tokens,
repeated n-grams blocked (``no_repeat_ngram_size``, Paulus et al. 2018).
Metrics: ROUGE-1/2/L F1 (Lin 2004) via ``rouge-score``, with a character tokenizer for
Chinese; the lead-sentence baseline of the same documents is reported beside them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from transferkit.core.config import DataConfig, option
from transferkit.core.contracts import IGNORE_INDEX, Batch, Splits
from transferkit.core.errors import UserError
from transferkit.data.output import write_records
from transferkit.data.seq2seq import Seq2SeqExamples, lead_sentences
from transferkit.data.task_splits import load_seq2seq_splits, read_seq2seq_file
from transferkit.data.truncation import encode_truncated
from transferkit.evaluation.rouge import rouge_scores
from transferkit.modules.inference import run_ragged
from transferkit.modules.seq2seq import Seq2SeqTaskModel, drop_pooler, set_special_tokens, warm_start

logger = logging.getLogger("transferkit")


@dataclass
class SummarizationConfig:
    """Options of the summarization task: columns, target length and beam search."""

    source_column: str = option("document", "column (csv/tsv/jsonl) holding the document")
    target_column: str = option("summary", "column holding the reference summary")
    max_target_length: int = option(64, "longest summary in tokens: longer references are truncated (counted)")
    num_beams: int = option(4, "beam width of beam search (1 = greedy)")
    length_penalty: float = option(1.0, "alpha in score = log p / length^alpha (> 1 favours longer summaries)")
    no_repeat_ngram_size: int = option(3, "never repeat an n-gram of this size in a summary (0 = off)")
    min_target_length: int = option(0, "shortest generated summary in tokens")
    label_smoothing: float = option(0.0, "label smoothing of the token cross-entropy")
    lead_sentences: int = option(1, "sentences of the lead baseline reported beside ROUGE (0 = none)")
    language: Literal["auto", "en", "zh"] = option("auto", "ROUGE tokenisation: en = words (stemmed), zh = characters")


class SummarizationTask:
    """Generate a summary of a document."""

    name: ClassVar[str] = "summarization"
    Config: ClassVar[type] = SummarizationConfig
    primary_metric: ClassVar[str] = "rougeL"
    report_metrics: ClassVar[tuple[str, ...]] = ("rougeL", "rouge1", "rouge2")  # grid/report columns; first = primary
    metric_titles: ClassVar[dict[str, str]] = {"rougeL": "ROUGE-L", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2"}
    budget_unit: ClassVar[str] = "training pairs"
    feature_kind: ClassVar[str] = "none"
    generative: ClassVar[bool] = True
    input_forms: ClassVar[tuple[str, ...]] = ("text",)

    def __init__(self, config: SummarizationConfig | None = None, labels: list[str] | None = None) -> None:
        self.config = config or SummarizationConfig()
        self.labels: list[str] = []

    @classmethod
    def read_splits(cls, data: DataConfig, config: SummarizationConfig, seed: int) -> Splits:
        """Document/summary pairs; without ``data.eval`` a seeded random ``eval_fraction`` is held out."""
        return load_seq2seq_splits(data, seed, config)

    def read(self, path: str, data: DataConfig, require_targets: bool = True) -> Seq2SeqExamples:
        """A table with the task's columns or parallel text files (summaries ignored unless ``require_targets``)."""
        return read_seq2seq_file(path, data, self.config, require_targets=require_targets)

    def from_inputs(self, inputs: Sequence[str]) -> Seq2SeqExamples:
        """Documents given in Python."""
        documents = [str(text) for text in inputs]
        return Seq2SeqExamples(documents, None, list(range(1, len(documents) + 1)))

    def input_texts(self, examples: Seq2SeqExamples) -> list[str]:
        """Documents and, when read, their summaries (the tokenizer reads both)."""
        return [*examples.sources, *(examples.targets or [])]

    def data_summary(self, examples: Seq2SeqExamples) -> dict[str, Any]:
        return {}

    def build_model(self, loaded: Any, mlp_hidden: int = 0) -> Seq2SeqTaskModel:
        """A seq2seq checkpoint as it is; an encoder checkpoint warm-started into BERT2BERT."""
        backbone, tokenizer = loaded.backbone, loaded.tokenizer
        if not backbone.config.is_encoder_decoder:
            backbone, new = warm_start(backbone, tokenizer, pretrained=not loaded.random_init)
            return Seq2SeqTaskModel(backbone, self, new)
        if backbone.config.decoder_start_token_id is None:
            set_special_tokens(backbone, tokenizer)
        return Seq2SeqTaskModel(backbone, self)

    def model_from_config(self, config: Any, mlp_hidden: int = 0) -> Seq2SeqTaskModel:
        """The saved architecture with empty weights (a run's model directory is loaded into it)."""
        from transformers import AutoModelForSeq2SeqLM

        return Seq2SeqTaskModel(drop_pooler(AutoModelForSeq2SeqLM.from_config(config)), self)

    def infer(self, model: Any, features: list[dict[str, Any]], collator: Any, batch_size: int) -> list[np.ndarray]:
        """Beam-search generated token ids, one row per example."""
        model.eval()
        device = next(model.parameters()).device
        options = self.generation_options()
        return run_ragged(lambda batch: model.generate_ids(batch, **options), features, collator, batch_size, device,
                          whole_rows=True)

    def generation_options(self) -> dict[str, Any]:
        c = self.config
        return {"num_beams": c.num_beams, "length_penalty": c.length_penalty, "max_new_tokens": c.max_target_length,
                "min_new_tokens": c.min_target_length or None, "no_repeat_ngram_size": c.no_repeat_ngram_size or None,
                "early_stopping": c.num_beams > 1, "do_sample": False}

    def featurize(self, examples: Seq2SeqExamples, tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
        """Source ids (truncated to ``max_length``) and, given targets, label ids (to ``max_target_length``)."""
        encoded = encode_truncated(tokenizer, examples.sources, max_length)  # long documents: read a prefix
        keys = [k for k in ("input_ids", "attention_mask") if k in encoded]
        features = [{**{k: encoded[k][i] for k in keys}, "_example": i} for i in range(len(examples))]
        if examples.targets is not None:
            for feature, labels in zip(features, self._labels(examples, tokenizer), strict=True):
                feature["labels"] = labels
        return features

    def _labels(self, examples: Seq2SeqExamples, tokenizer: Any) -> list[list[int]]:
        """Target ids without a leading start token (the decoder is fed it); overlong targets are cut, counted."""
        limit = self.config.max_target_length
        start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        ids = tokenizer(text_target=examples.targets, truncation=False, padding=False)["input_ids"]
        ids = [row[1:] if row and row[0] == start else row for row in ids]
        long = sum(len(row) > limit for row in ids)
        if long:
            logger.warning("%s: %d of %d target summaries are longer than max_target_length=%d tokens and were "
                           "truncated", examples.source, long, len(ids), limit)
        end = ids[0][-1] if ids and ids[0] else None
        return [row if len(row) <= limit else row[: limit - 1] + [end] for row in ids]

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        logits = outputs["logits"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=IGNORE_INDEX,
                               label_smoothing=self.config.label_smoothing)

    def decode(self, outputs: list[np.ndarray], features: Any = None, examples: Any = None, tokenizer: Any = None
               ) -> list[str]:
        """Generated ids -> summary texts (special tokens dropped)."""
        if tokenizer is None:
            raise ValueError("summarization decoding needs the tokenizer")
        texts = tokenizer.batch_decode([np.asarray(row, dtype=np.int64) for row in outputs], skip_special_tokens=True)
        return [text.strip() for text in texts]

    def references(self, examples: Seq2SeqExamples) -> list[str]:
        return list(examples.targets or [])

    def metrics(self, predictions: list[str], references: list[str], n_resamples: int = 200, seed: int = 0
                ) -> dict[str, Any]:
        return rouge_scores(predictions, references, language=self.config.language, n_resamples=n_resamples, seed=seed)

    def evaluate(self, predictions: list[str], examples: Seq2SeqExamples, seed: int = 0) -> dict[str, Any]:
        """ROUGE with bootstrap CIs, plus the lead-k baseline of the same documents."""
        references = self.references(examples)
        metrics = self.metrics(predictions, references, n_resamples=1000, seed=seed)
        metrics["ci95"] = {name: metrics.get(f"{name}_ci") for name in self.report_metrics}
        metrics["mean_summary_words"] = float(np.mean([len(p.split()) for p in predictions])) if predictions else 0.0
        k = self.config.lead_sentences
        if k:
            lead = [lead_sentences(text, k, self.config.language) for text in examples.sources]
            scores = self.metrics(lead, references)
            metrics[f"lead{k}"] = {name: scores[name] for name in ("rouge1", "rouge2", "rougeL")}
        return metrics

    def present(self, predictions: list[str]) -> list[str]:
        return list(predictions)

    def transformers_head(self, model: Any) -> tuple[str, dict[str, str]] | None:
        """The whole encoder-decoder LM is ``AutoModelForSeq2SeqLM`` (``EncoderDecoderModel`` for BERT2BERT, T5 or BART
        as loaded) unless a peft adapter wraps it; generation settings (beams ...) stay the task's."""
        from transformers import PreTrainedModel

        if not isinstance(model.backbone, PreTrainedModel):
            return None
        return "AutoModelForSeq2SeqLM", {"backbone.": ""}

    def probabilities(self, predictions: list[str]) -> Any:
        raise UserError("task 'summarization' predicts no class probabilities: use predict()")

    def prediction_records(self, predictions: list[str], examples: Seq2SeqExamples) -> list[dict[str, Any]]:
        """One generated summary per document, with its source row."""
        return [{"row": row, "summary": summary}
                for row, summary in zip(examples.rows or range(1, len(predictions) + 1), predictions, strict=True)]

    def write_predictions(self, path: str, predictions: list[str], examples: Seq2SeqExamples) -> int:
        """:meth:`prediction_records` as JSON Lines."""
        write_records(path, self.prediction_records(predictions, examples))
        return len(predictions)
