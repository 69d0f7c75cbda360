"""A word-level encoder over static word vectors, as a Hugging Face model, plus its tokenizer.

``WordVectorModel`` embeds token ids with an ``nn.Embedding`` (initialised from GloVe /
word2vec / fastText vectors by the ``word_vectors`` strategy) and turns the embedded
sequence ``E = [e_1 .. e_n]`` (``e_t ∈ R^d``) into token states ``H`` that the task head
pools:

* ``mean``: ``H = E``; the head averages them (``(1/n) Σ_t e_t``, a bag of vectors) and an
  MLP classifies (Iyyer et al. 2015, "deep averaging networks").
* ``cnn``: Kim 2014, "Convolutional Neural Networks for Sentence Classification": for each
  filter width ``h`` (default 3, 4, 5) and map ``j`` (default 100 each),
  ``c_t = ReLU(w_j · e_{t-⌊(h-1)/2⌋ : t+⌈(h-1)/2⌉} + b_j)``; the head's masked max-over-time
  pooling ``ĉ_j = max_t c_t`` finishes Kim's model (outputs are "same"-padded, so a
  sentence shorter than ``h`` still works).  Kim's dropout 0.5 on the penultimate layer is
  the task head's ``dropout``; this model's own ``dropout`` acts on the embeddings.
* ``bilstm``: a packed bidirectional LSTM (padding never enters the recurrence),
  ``H_t = [→h_t ; ←h_t]``, max-pooled by the head.

Registered with ``AutoConfig``/``AutoModel`` at import (``model_type`` =
``transferkit-word-vectors``), so a saved run reloads with ``AutoModel.from_config``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import WordLevel
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast
from transformers.modeling_outputs import BaseModelOutput

from transferkit.models.vectors import StaticVectors

PAD, UNK, SEP = "[PAD]", "[UNK]", "[SEP]"
SPECIAL_TOKENS = (PAD, UNK, SEP)  # ids 0, 1, 2
MODEL_TYPE = "transferkit-word-vectors"
EncoderName = Literal["mean", "cnn", "bilstm"]


class WordVectorConfig(PretrainedConfig):
    """Configuration of :class:`WordVectorModel`; ``hidden_size`` is the encoder's output width."""

    model_type = MODEL_TYPE

    vocab_size: int = 3
    embedding_dim: int = 50
    encoder: str = "cnn"
    cnn_filter_sizes: list[int] | None = None
    cnn_filters: int = 100
    lstm_hidden: int = 128
    dropout: float = 0.25
    pad_token_id: int = 0

    def __post_init__(self, **kwargs) -> None:
        if self.cnn_filter_sizes is None:
            self.cnn_filter_sizes = [3, 4, 5]
        if self.encoder not in ("mean", "cnn", "bilstm"):
            raise ValueError(f"encoder must be mean, cnn or bilstm, got {self.encoder!r}")
        super().__post_init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        """Width of the token states: d (mean), |filter sizes|·filters (cnn) or 2·lstm_hidden (bilstm)."""
        if self.encoder == "cnn":
            return len(self.cnn_filter_sizes) * self.cnn_filters
        if self.encoder == "bilstm":
            return 2 * self.lstm_hidden
        return self.embedding_dim


class KimCNN(nn.Module):
    """Parallel 1-d convolutions of widths ``sizes`` (``maps`` each) + ReLU, per position.

    (batch, seq, dim) -> (batch, seq, len(sizes)·maps); each input is zero-padded by
    ``⌊(h-1)/2⌋`` on the left and ``⌈(h-1)/2⌉`` on the right, so the length is kept.
    """

    def __init__(self, dim: int, sizes: Iterable[int], maps: int) -> None:
        super().__init__()
        self.sizes = [int(size) for size in sizes]
        self.convs = nn.ModuleList(nn.Conv1d(dim, maps, size) for size in self.sizes)

    def forward(self, embedded: torch.Tensor) -> torch.Tensor:
        channels = embedded.transpose(1, 2)  # (batch, dim, seq)
        outputs = []
        for size, conv in zip(self.sizes, self.convs, strict=True):
            left = (size - 1) // 2
            outputs.append(torch.relu(conv(F.pad(channels, (left, size - 1 - left)))))  # (batch, maps, seq)
        return torch.cat(outputs, dim=1).transpose(1, 2)  # (batch, seq, maps·k)


class BiLSTM(nn.Module):
    """A bidirectional LSTM over the real tokens only (packed); (batch, seq, dim) -> (batch, seq, 2·hidden)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)

    def forward(self, embedded: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=embedded.shape[1])
        return states


class WordVectorModel(PreTrainedModel):
    """Embeddings (static word vectors) + a mean / Kim-CNN / BiLSTM encoder; returns token states.

    ``default_pooling`` tells the task head how to pool when the task's pooling is ``auto``:
    ``mean`` for the mean encoder, max-over-time for the CNN and the BiLSTM.
    """

    config_class = WordVectorConfig
    base_model_prefix = "word_vectors"
    main_input_name = "input_ids"

    def __init__(self, config: WordVectorConfig) -> None:
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder: nn.Module | None = None
        if config.encoder == "cnn":
            self.encoder = KimCNN(config.embedding_dim, config.cnn_filter_sizes, config.cnn_filters)
        elif config.encoder == "bilstm":
            self.encoder = BiLSTM(config.embedding_dim, config.lstm_hidden)
        self.default_pooling = "mean" if config.encoder == "mean" else "max"
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's own initialisers (Kaiming-uniform convolutions, uniform LSTM); embeddings N(0, 0.1²) + zero padding.

        The ``word_vectors`` strategy overwrites the embedding matrix afterwards.
        """
        if isinstance(module, (nn.Conv1d, nn.LSTM)):
            module.reset_parameters()
        elif isinstance(module, nn.Embedding):
            with torch.no_grad():
                module.weight.normal_(0.0, 0.1)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = False,
        **kwargs,
    ) -> BaseModelOutput:
        """(batch, seq) ids -> ``last_hidden_state`` (batch, seq, hidden_size); padding positions are zero in the input.

        ``token_type_ids`` are accepted and ignored (a pair is one word sequence joined by ``[SEP]``).
        """
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        mask = attention_mask.unsqueeze(-1).to(self.embeddings.weight.dtype)  # (batch, seq, 1)
        embedded = self.dropout(self.embeddings(input_ids)) * mask  # (batch, seq, dim)
        if isinstance(self.encoder, BiLSTM):
            states = self.encoder(embedded, attention_mask)
        elif self.encoder is not None:
            states = self.encoder(embedded)
        else:
            states = embedded
        hidden = (embedded, states) if output_hidden_states else None
        return BaseModelOutput(last_hidden_state=states, hidden_states=hidden)


def build_tokenizer(texts: Iterable[str], lowercase: bool = True, min_count: int = 1,
                    max_vocab: int = 50000) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is the training texts' words (Rust ``tokenizers``).

    Words and punctuation are split like BERT's pre-tokenizer; words seen fewer than
    ``min_count`` times or beyond the ``max_vocab`` most frequent become ``[UNK]``.
    ``[PAD]`` = 0, ``[UNK]`` = 1, ``[SEP]`` = 2 (joins the two texts of a pair).
    """
    steps = [normalizers.NFKC(), *([normalizers.Lowercase()] if lowercase else [])]
    backend = Tokenizer(WordLevel(unk_token=UNK))
    backend.normalizer = normalizers.Sequence(steps)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordLevelTrainer(vocab_size=max_vocab + len(SPECIAL_TOKENS), min_frequency=min_count,
                                        special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    backend.train_from_iterator(texts, trainer=trainer)
    sep_id = backend.token_to_id(SEP)
    backend.post_processor = processors.TemplateProcessing(single="$A", pair=f"$A {SEP} $B", special_tokens=[(SEP, sep_id)])
    return _wrap(backend)


def extend_vocabulary(tokenizer: PreTrainedTokenizerFast, words: Iterable[str]) -> PreTrainedTokenizerFast:
    """A copy of ``tokenizer`` whose vocabulary also holds ``words`` (new ids after the existing ones).

    Used to give words never seen in training their pretrained vector (e.g. the most
    frequent words of the vectors file), so they are not all ``[UNK]`` at prediction time.
    """
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    vocab = backend.get_vocab(with_added_tokens=True)
    for word in words:
        vocab.setdefault(word, len(vocab))
    backend.model = WordLevel(vocab=vocab, unk_token=UNK)
    return _wrap(backend)


def _wrap(backend: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, unk_token=UNK, sep_token=SEP,
                                   model_max_length=1_000_000, model_input_names=["input_ids", "attention_mask"])


def vocabulary(tokenizer: PreTrainedTokenizerFast) -> list[str]:
    """The tokenizer's words ordered by id (``[PAD]``, ``[UNK]``, ``[SEP]`` first)."""
    vocab = tokenizer.backend_tokenizer.get_vocab(with_added_tokens=True)
    words = [""] * len(vocab)
    for word, index in vocab.items():
        words[index] = word
    return words


def embedding_matrix(words: list[str], vectors: StaticVectors, init: str = "pretrained", oov: str = "normal",
                     oov_scale: float = 1.0) -> tuple[torch.Tensor, np.ndarray]:
    """The initial (len(words), dim) embedding matrix and which rows came from ``vectors``.

    ``pretrained``: a word's row is its vector (exact form, else lowercased); the other
    rows (``[UNK]``, ``[SEP]``, uncovered words) follow ``oov``: ``normal`` draws
    ``N(0, (oov_scale·σ)²)``, ``uniform`` ``U[-a, a]`` with ``a = √3·oov_scale·σ`` (same
    variance), ``zeros`` zeros; ``σ`` is the standard deviation of the found vectors'
    entries.  ``random`` (the no-transfer baseline) draws every row from ``N(0, σ²)``, so
    the two differ only in the transferred information.  ``[PAD]`` (row 0) is always zero.
    Random draws use torch's global RNG (seeded by the caller), one full matrix either way.
    """
    rows = np.array([vectors.index.get(word, vectors.index.get(word.lower(), -1)) for word in words], dtype=np.int64)
    rows[: len(SPECIAL_TOKENS)] = -1  # special tokens never take a word's vector
    found = rows >= 0
    source = vectors.matrix[rows[found]] if found.any() else vectors.matrix
    sigma = float(source.std()) if source.size else 0.1
    noise = torch.randn(len(words), vectors.dim)  # (vocab, dim) N(0, 1)
    if init == "random":
        matrix = noise * sigma
    else:
        scale = oov_scale * sigma
        if oov == "uniform":
            matrix = (torch.rand(len(words), vectors.dim) * 2 - 1) * (3**0.5 * scale)
        else:
            matrix = noise * (scale if oov == "normal" else 0.0)
        matrix[torch.from_numpy(found)] = torch.from_numpy(vectors.matrix[rows[found]])
    matrix[0] = 0.0
    return matrix, found


def coverage(tokenizer: PreTrainedTokenizerFast, texts: list[str], found: np.ndarray,
             vocab_end: int | None = None) -> dict[str, float | int]:
    """Share of vocabulary types and of the ``texts``' tokens that have a vector.

    ``found[i]``: id ``i`` has a vector.  Types are ids ``3 .. vocab_end-1`` (the training
    words: specials and words added from the vectors file excluded; default all).  Token
    counts come from the Rust tokenizer and one ``np.bincount``: no Python loop over tokens.
    """
    encodings = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    ids = np.fromiter(itertools.chain.from_iterable(encoding.ids for encoding in encodings), dtype=np.int64)
    counts = np.bincount(ids, minlength=len(found))
    types = found[len(SPECIAL_TOKENS):vocab_end]
    return {
        "types": int(types.size),
        "tokens": int(counts.sum()),
        "type_coverage": float(types.mean()) if types.size else 0.0,
        "token_coverage": float(counts[found].sum() / counts.sum()) if counts.sum() else 0.0,
    }


AutoConfig.register(MODEL_TYPE, WordVectorConfig, exist_ok=True)
AutoModel.register(WordVectorConfig, WordVectorModel, exist_ok=True)
