"""How much of a text sample a tokenizer cannot read: the share of tokens that are its unknown token.

An English-only WordPiece vocabulary (MiniLM, BERT-base-uncased) maps most Chinese, Japanese or
Arabic characters to ``[UNK]``: a model fed such text trains and predicts on near-empty input and
fails silently.  :func:`warn_unknown_tokens` measures the rate on a sample and warns once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

logger = logging.getLogger("transferkit")

SAMPLE_SIZE = 2000
"""Texts tokenised per check (a seeded random sample of larger sets): enough for a rate to within ~1 point."""
MAX_CHARS = 200
"""Characters of each text tokenised (long documents are cut: the rate, not the count, is wanted; 2,000
texts x 200 characters is still ~80,000 tokens).  Kept short because ``predict`` checks every call's
inputs: at 2,000 characters the check of 600 BBC articles took 0.33 s and at 500 0.13 s, beside the
0.26 s of the prediction's own (prefix) tokenisation; at 200, 0.027 s (measured, profiled)."""
MULTILINGUAL_MODEL = "multilingual-e5-small"


def unknown_token_rate(texts: Sequence[str], tokenizer: Any, sample_size: int = SAMPLE_SIZE, seed: int = 0
                       ) -> float | None:
    """Share of the tokens of (a sample of) ``texts`` that are ``tokenizer``'s unknown token.

    Special tokens are not added, so every token counted comes from the text.  None when the
    tokenizer has no unknown token (byte-level BPE reads every string) or the sample has no tokens.
    """
    unk_id = tokenizer.unk_token_id
    if unk_id is None or not len(texts):
        return None
    if len(texts) > sample_size:
        picked = np.random.default_rng(seed).choice(len(texts), size=sample_size, replace=False)
        texts = [texts[i] for i in np.sort(picked)]
    # verbose=False: no "longer than the maximum sequence length" warning, nothing is fed to a model here
    ids = tokenizer([text[:MAX_CHARS] for text in texts], add_special_tokens=False, verbose=False)["input_ids"]
    tokens = np.fromiter(chain.from_iterable(ids), dtype=np.int64)
    return float(np.mean(tokens == unk_id)) if tokens.size else None


def warn_unknown_tokens(texts: Sequence[str], tokenizer: Any, where: str, model: str, threshold: float
                        ) -> float | None:
    """Log one warning when more than ``threshold`` of the tokens of ``texts`` (the data set named
    ``where``) are unknown to ``model``'s tokenizer; returns the rate (None when not measured).

    ``threshold <= 0`` disables the check.
    """
    if threshold <= 0:
        return None
    rate = unknown_token_rate(texts, tokenizer)
    if rate is not None and rate > threshold:
        hint = (f"use a multilingual model, e.g. --model {MULTILINGUAL_MODEL}" if model != MULTILINGUAL_MODEL
                else "check the text's encoding and script")
        logger.warning("%.0f%% of tokens of %s map to %s under %s's tokenizer: %s (data.unk_warning=%g)",
                       100 * rate, where, tokenizer.unk_token, model, hint, threshold)
    return rate
