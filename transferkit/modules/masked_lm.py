"""Masked language modelling: the objective of continued pretraining (DAPT/TAPT) and of UDALM.

Devlin et al. 2019 (BERT): pick 15% of the (non-special) tokens; of those, 80% become
``[MASK]``, 10% a random token, 10% stay; predict the original token at every picked position:

    L_mlm = −(1/|M|) Σ_{i ∈ M} log softmax(E · g(h_i) + b)[x_i]

with ``h_i`` the encoder state at position i, ``g(h) = LayerNorm(gelu(W h + c))`` (BERT's
transform) and the decoder tied to the input word embeddings ``E ∈ R^{|V|×d}`` (Press & Wolf
2017), so a model without an MLM head (sentence encoders such as all-MiniLM-L6-v2) gets one with
only ``d² + 2d + |V|`` new weights.  Logits are computed for the masked positions only
(``|M| × |V|``, not ``batch × length × |V|``).  Masking is dynamic (a new draw each time a text is
seen, RoBERTa) and optionally whole-word (every piece of a picked word is masked; WordPiece
continuation pieces start with ``##``, SentencePiece word starts with ``▁``).

>>> import torch
>>> embeddings = torch.nn.Embedding(50, 8)
>>> head = MaskedLMHead(8, 50)
>>> hidden = torch.randn(5, 8)                       # states at 5 masked positions
>>> head(hidden, embeddings.weight).shape            # logits over the vocabulary
torch.Size([5, 50])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from transferkit.core.contracts import IGNORE_INDEX

HEAD_FILE = "mlm_head.safetensors"
"""Where a continued-pretraining checkpoint keeps its MLM head, beside the encoder's own weights."""


class MaskedLMHead(nn.Module):
    """BERT's MLM head with the decoder tied to the input embeddings: ``logits = E · LN(gelu(W h + c)) + b``.

    Shapes: ``hidden`` (n, d), ``embedding_weight`` (|V|, d) -> logits (n, |V|).
    """

    def __init__(self, hidden_size: int, vocab_size: int, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.masking: MaskingVocabulary | None = None  # the tokenizer's masking tables, when the head trains beside a task
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    @classmethod
    def for_backbone(cls, backbone: Any) -> MaskedLMHead:
        """A head sized for ``backbone``; the one saved beside its weights (``HEAD_FILE``) when there is one."""
        config = backbone.config
        head = cls(config.hidden_size, backbone.get_input_embeddings().weight.shape[0],
                   getattr(config, "layer_norm_eps", 1e-12))  # a transformers config attribute, not a contract probe
        path = os.path.join(str(config.name_or_path or ""), HEAD_FILE)
        if os.path.isfile(path):
            head.load_state_dict(load_file(path))
            head.loaded_from = path
        return head

    loaded_from: str | None = None
    """The file the head's weights came from (None = freshly initialised)."""

    def save(self, directory: str) -> None:
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, os.path.join(directory, HEAD_FILE))

    def forward(self, hidden: torch.Tensor, embedding_weight: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(F.gelu(self.dense(hidden))), embedding_weight, self.bias)


@dataclass
class MaskingVocabulary:
    """What masking needs to know of a tokenizer, as lookup tables over the vocabulary.

    ``special[v]``: token v is never picked (``[CLS]``, ``[SEP]``, padding ...);
    ``word_start[v]``: token v begins a word (whole-word masking), None when the tokenizer's
    pieces do not say (then whole-word masking is refused).
    """

    mask_id: int
    vocab_size: int
    special: torch.Tensor
    word_start: torch.Tensor | None

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, vocab_size: int) -> MaskingVocabulary:
        if tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token: masked-LM pretraining needs one")
        special = torch.zeros(vocab_size, dtype=torch.bool)
        special[[i for i in tokenizer.all_special_ids if i < vocab_size]] = True
        pieces = tokenizer.convert_ids_to_tokens(list(range(min(vocab_size, len(tokenizer)))))
        pieces += [""] * (vocab_size - len(pieces))
        word_start = None
        if any(p.startswith("##") for p in pieces):  # WordPiece: continuations are marked
            word_start = torch.tensor([not p.startswith("##") for p in pieces])
        elif any(p.startswith("▁") for p in pieces):  # SentencePiece: word starts are marked
            word_start = torch.tensor([p.startswith("▁") for p in pieces])
        return cls(int(tokenizer.mask_token_id), vocab_size, special, word_start)


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, vocabulary: MaskingVocabulary,
                probability: float = 0.15, whole_word: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 corruption of (batch, length) ids -> (corrupted ids, labels with ``IGNORE_INDEX`` elsewhere).

    Every row with a maskable token gets at least one masked position (a short text would
    otherwise contribute nothing, and a batch of them an undefined loss).
    """
    device = input_ids.device
    special = vocabulary.special.to(device)
    candidates = attention_mask.bool() & ~special[input_ids]

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    if whole_word:
        if vocabulary.word_start is None:
            raise ValueError("whole-word masking needs a WordPiece (##) or SentencePiece (▁) vocabulary")
        starts = vocabulary.word_start.to(device)[input_ids] | ~candidates
        words = torch.cumsum(starts.long(), dim=1)  # word index of every position
        chosen = torch.gather(uniform(*input_ids.shape[:1], input_ids.shape[1] + 1) < probability, 1, words)
        chosen &= candidates
    else:
        chosen = (uniform(*input_ids.shape) < probability) & candidates
    empty = ~chosen.any(dim=1) & candidates.any(dim=1)  # rows with nothing picked: take their first candidate
    first = torch.argmax(candidates.long(), dim=1)
    chosen[empty.nonzero().squeeze(1), first[empty]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    draw = uniform(*input_ids.shape)
    corrupted = input_ids.clone()
    corrupted[chosen & (draw < 0.8)] = vocabulary.mask_id
    swap = chosen & (draw >= 0.8) & (draw < 0.9)
    corrupted[swap] = (uniform(int(swap.sum())) * vocabulary.vocab_size).long().clamp_max(vocabulary.vocab_size - 1)
    return corrupted, labels


def masked_lm_loss(backbone: nn.Module, head: MaskedLMHead, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   labels: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of the original tokens at the masked positions (``labels != IGNORE_INDEX``)."""
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids
    hidden = backbone(**inputs).last_hidden_state
    picked = labels != IGNORE_INDEX
    logits = head(hidden[picked], backbone.get_input_embeddings().weight)
    return F.cross_entropy(logits.float(), labels[picked])


class MaskedLanguageModel(nn.Module):
    """An encoder plus its MLM head, trained as one module by continued pretraining.

    ``forward(batch)`` masks ``batch["input_ids"]`` dynamically (the global torch RNG, seeded by the
    Trainer), unless the batch carries fixed per-token ``labels`` (held-out text masked once, so every
    evaluation scores the same positions), and returns ``L_mlm``.
    """

    def __init__(self, backbone: nn.Module, head: MaskedLMHead, vocabulary: MaskingVocabulary,
                 probability: float = 0.15, whole_word: bool = False) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.vocabulary, self.probability, self.whole_word = vocabulary, probability, whole_word

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "labels" in batch:
            ids, labels = batch["input_ids"], batch["labels"]
        else:
            ids, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], self.vocabulary,
                                      self.probability, self.whole_word)
        return masked_lm_loss(self.backbone, self.head, ids, batch["attention_mask"], labels,
                              batch.get("token_type_ids"))
