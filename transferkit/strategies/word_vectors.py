"""Transfer from static word vectors: GloVe / word2vec / fastText into a small trained encoder.

The vocabulary comes from the training texts; the embedding matrix starts from the
pretrained vectors (Pennington et al. 2014, GloVe; Mikolov et al. 2013, word2vec) and the
encoder on top is trained from scratch: mean-pooling + MLP, the CNN of Kim 2014
("Convolutional Neural Networks for Sentence Classification") or a BiLSTM.  ``freeze``
keeps the vectors fixed (Kim's CNN-static) or fine-tunes them (CNN-non-static).

``init: random`` draws every embedding from ``N(0, σ²)`` with the vectors' own ``σ``:
the same model with nothing transferred, the baseline that shows what the vectors add.

The run records vocabulary coverage (``type_coverage``: share of the vocabulary's words
that have a vector; ``token_coverage``: share of training tokens) in ``metrics.json``
under ``encoder`` and warns when fewer than 10% of the words are covered.

>>> strategy = WordVectors(WordVectorsConfig(encoder="cnn"))
>>> loaded = strategy.load_source("glove-6b-50d", train_examples)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from transferkit.core.config import option
from transferkit.core.contracts import TextExamples
from transferkit.core.errors import UserError
from transferkit.models import get_entry
from transferkit.models.loading import LoadedModel
from transferkit.models.vectors import VECTOR_EXTENSIONS, StaticVectors, check_vectors_file, model_kind, read_vectors
from transferkit.models.word_vectors import (
    WordVectorConfig,
    WordVectorModel,
    build_tokenizer,
    coverage,
    embedding_matrix,
    extend_vocabulary,
    vocabulary,
)
from transferkit.strategies.common import optimizer_groups, set_trainable
from transferkit.strategies.neural import NeuralStrategy

logger = logging.getLogger("transferkit")
LOW_COVERAGE = 0.10


@dataclass
class WordVectorsConfig:
    init: Literal["pretrained", "random"] = option(
        "pretrained", "pretrained = embeddings from the vectors; random = N(0, σ²) everywhere (the no-transfer baseline)")
    encoder: Literal["cnn", "bilstm", "mean"] = option("cnn", "cnn (Kim 2014), bilstm, or mean (mean-pool + MLP)")
    freeze: bool = option(False, "keep the embeddings fixed (Kim's CNN-static); false = fine-tune them (non-static)")
    oov: Literal["normal", "uniform", "zeros"] = option(
        "normal", "init of words without a vector: N(0, (oov_scale·σ)²), uniform with that variance, or zeros")
    oov_scale: float = option(1.0, "scale of the out-of-vocabulary init relative to the vectors' std σ")
    lowercase: bool = option(True, "lowercase texts before splitting into words (GloVe 6B is lowercase)")
    min_count: int = option(1, "words seen fewer times in the training texts become [UNK]")
    max_vocab: int = option(50000, "keep at most this many most frequent training words")
    extra_vocab: int = option(50000, "also add the N most frequent words of the vectors (file order) to the vocabulary, "
                                     "so words unseen in training keep their vector (init pretrained only)")
    cnn_filter_sizes: list[int] = option([3, 4, 5], "CNN filter widths in words (Kim 2014: 3, 4, 5)")
    cnn_filters: int = option(100, "feature maps per CNN filter width (Kim 2014: 100)")
    lstm_hidden: int = option(128, "hidden units per direction of the BiLSTM")
    mlp_hidden: int = option(256, "hidden units of the MLP head of the mean encoder")
    dropout: float = option(0.25, "dropout on the word embeddings (Kim's 0.5 on the penultimate layer is the task's dropout option)")


class WordVectors(NeuralStrategy):
    """Static word vectors + a CNN / BiLSTM / mean encoder, trained end to end on the task."""

    name: ClassVar[str] = "word_vectors"
    supports: ClassVar[frozenset[str]] = frozenset({"classification"})
    # Kim 2014 trains with Adadelta; with AdamW a small CNN over static vectors wants ~1e-3, not 5e-5.
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 1e-3}
    Config: ClassVar[type] = WordVectorsConfig

    @property
    def mlp_hidden(self) -> int:
        """Hidden units of the head: an MLP for the mean encoder, linear (0) on top of a CNN / BiLSTM."""
        return self.config.mlp_hidden if self.config.encoder == "mean" else 0

    def check_model(self, model_ref: str) -> None:
        """Fail before any work unless ``model_ref`` names word vectors that exist."""
        ref = str(model_ref).strip()
        entry = get_entry(ref)
        if entry is not None and entry.kind == "vectors":
            entry.resolve()  # raises when the package is missing
            return
        if model_kind(ref) == "vectors":
            check_vectors_file(ref)  # refuses pickles before any work
            return
        path = os.path.expanduser(ref)
        if entry is None and not os.path.exists(path) and (path.lower().endswith(VECTOR_EXTENSIONS) or os.sep in ref):
            raise UserError(f"vectors file not found: {path}")
        raise UserError(f"strategy word_vectors needs static word vectors (glove-6b-50d or a vectors file "
                        f"{'/'.join(VECTOR_EXTENSIONS)}); got {model_kind(ref).replace('_', ' ')} model '{ref}'")

    def load_source(self, model_ref: str, train: TextExamples, seq2seq: bool = False) -> LoadedModel:
        """Vocabulary from ``train``, embeddings from the vectors, a fresh encoder (torch's RNG, seeded by the caller)."""
        cfg = self.config
        self.check_model(model_ref)
        texts = list(train.texts) + list(train.text_pairs or [])
        tokenizer, vectors, trained = _tokenizer_and_vectors(cfg, str(model_ref), texts)
        words = vocabulary(tokenizer)
        model = WordVectorModel(WordVectorConfig(
            vocab_size=len(words), embedding_dim=vectors.dim, encoder=cfg.encoder,
            cnn_filter_sizes=list(cfg.cnn_filter_sizes), cnn_filters=cfg.cnn_filters, lstm_hidden=cfg.lstm_hidden,
            dropout=cfg.dropout, pad_token_id=tokenizer.pad_token_id,
        ))
        matrix, found = embedding_matrix(words, vectors, cfg.init, cfg.oov, cfg.oov_scale)
        with torch.no_grad():
            model.embeddings.weight.copy_(matrix)
        model.eval()
        info = {"vectors": str(model_ref), "dim": vectors.dim, "vocab_size": len(words), "init": cfg.init,
                "encoder": cfg.encoder, "extra_vocab": len(words) - trained, **coverage(tokenizer, texts, found, trained)}
        _report(info)
        digest = hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()[:16]
        fingerprint = f"{_source_fingerprint(str(model_ref))}+vocab-{digest}" + ("+random-init" if cfg.init == "random" else "")
        return LoadedModel(tokenizer=tokenizer, backbone=model, ref=str(model_ref), path=vectors.source,
                           fingerprint=fingerprint, is_local=True, random_init=cfg.init == "random", info=info)

    def task_model(self, ctx: Any, loaded: LoadedModel) -> tuple[Any, dict[str, Any]]:
        """The task model; its inputs are never checked for [UNK] tokens: word vectors report their own coverage."""
        model, meta = super().task_model(ctx, loaded)
        return model, {**meta, "unk_warning": 0.0}

    def prepare(self, model: Any) -> Any:
        set_trainable(list(model.named_parameters()), True)
        set_trainable(list(model.backbone.embeddings.named_parameters()), not self.config.freeze)
        return model

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list[dict]:
        """Embeddings (unless frozen: then no optimizer state) and encoder at ``learning_rate``, head at its own."""
        backbone = model.backbone
        embedding_ids = {id(p) for p in backbone.embeddings.parameters()}
        groups = [
            ("embeddings", list(backbone.embeddings.named_parameters())),
            ("encoder", [(n, p) for n, p in backbone.named_parameters() if id(p) not in embedding_ids]),
            ("head", list(model.head.named_parameters())),
        ]
        rates = {"encoder": learning_rate, "head": head_learning_rate}
        if not self.config.freeze:
            rates["embeddings"] = learning_rate
        return optimizer_groups(groups, rates, weight_decay)


def _tokenizer_and_vectors(cfg: WordVectorsConfig, model_ref: str, texts: list[str]) -> tuple[Any, StaticVectors, int]:
    """Tokenizer over the training words (+ the vectors' ``extra_vocab`` most frequent words), the vectors it
    needs, and the number of training-vocabulary ids (specials included)."""
    tokenizer = build_tokenizer(texts, cfg.lowercase, cfg.min_count, cfg.max_vocab)
    words = vocabulary(tokenizer)
    extra_vocab = cfg.extra_vocab if cfg.init == "pretrained" else 0  # random init: unseen words stay [UNK]
    vectors = read_vectors(model_ref, set(words) | {word.lower() for word in words}, first=extra_vocab)
    if extra_vocab:
        known = set(words)
        extra = [word for word in vectors.words if word not in known and (not cfg.lowercase or word == word.lower())]
        tokenizer = extend_vocabulary(tokenizer, extra)
    return tokenizer, vectors, len(words)


def _source_fingerprint(ref: str) -> str:
    """A catalog name as it is; a file by absolute path, size and modification time."""
    if get_entry(ref) is not None:
        return ref
    path = os.path.abspath(os.path.expanduser(ref))
    stat = os.stat(path)
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def _report(info: dict[str, Any]) -> None:
    logger.info("word vectors %s: %d-d, vocabulary %s types, %.1f%% of types and %.1f%% of tokens covered (init %s)",
                info["vectors"], info["dim"], f"{info['types']:,}", 100 * info["type_coverage"],
                100 * info["token_coverage"], info["init"])
    if info["type_coverage"] < LOW_COVERAGE:
        logger.warning("vectors %s cover only %.1f%% of the %s vocabulary types (%.1f%% of tokens): "
                       "check lowercase/tokenisation or the vectors file", info["vectors"],
                       100 * info["type_coverage"], f"{info['types']:,}", 100 * info["token_coverage"])
