"""Tiny, offline models for tests: a random BERT, broken directories, a small word-vectors file.

:func:`make_tiny_bert` writes a few-kilobyte BERT (safetensors + fast WordPiece
tokenizer) in well under a second, so tests never need the network or a real model.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PUNCTUATION = tuple(".,!?;:'\"-()")
_COMMON_WORDS_TEXT = """
    the a an and or but not no yes is are was were be been being am do does did have has had will would can could
    should may might must i you he she it we they me him her us them my your his its our their this that these those
    there here what which who whom whose when where why how all any some many much more most few less very too so
    than then just only also even still again ever never always often of to in on at by for with from about into over
    under after before between through during without up down out off good bad great best worst better worse nice
    fine poor awful terrible excellent amazing boring fun funny love hate like dislike enjoy movie film story plot
    actor actors acting scene scenes music book food service place price time day night year people man woman thing
    way world life work well really quite pretty new old big small long short high low first last same other one two
    three make made get got go went see saw watch watched say said think know want feel felt look looked come came
    buy bought recommend recommended again waste money worth happy sad angry positive negative neutral
"""
COMMON_WORDS = tuple(_COMMON_WORDS_TEXT.split())


def _vocab(vocab_words: Iterable[str] | None) -> list[str]:
    tokens: list[str] = list(SPECIAL_TOKENS)
    tokens += PUNCTUATION
    tokens += string.ascii_lowercase + string.digits
    tokens += [f"##{char}" for char in string.ascii_lowercase + string.digits]
    tokens += COMMON_WORDS
    for text in vocab_words or ():
        tokens += str(text).lower().split()
    return list(dict.fromkeys(tokens))


def _write_tokenizer(directory: Path, vocab: list[str]) -> None:
    (directory / "vocab.txt").write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(vocab)}, do_lower_case=True)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(str(directory))


def _tiny_config(vocab_size: int, hidden_size: int, layers: int, heads: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=64,
        max_position_embeddings=128,
        type_vocab_size=2,
        pad_token_id=0,
    )


def make_tiny_bert(
    directory: str | os.PathLike[str],
    vocab_words: Iterable[str] | None = None,
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 2,
    seed: int = 0,
) -> str:
    """Write a random-init tiny ``BertModel`` (safetensors) plus a fast tokenizer; return the directory.

    The vocabulary holds the BERT special tokens, punctuation, letters, digits, ``##``
    continuations of letters/digits (so any lowercase word tokenizes), common English
    words and ``vocab_words``.  Weights depend only on ``seed``; the global RNG is untouched.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    vocab = _vocab(vocab_words)
    _write_tokenizer(target, vocab)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(_tiny_config(len(vocab), hidden_size, layers, heads))
    model.save_pretrained(str(target))
    return str(target)


def write_tiny_vectors(path: str | os.PathLike[str], words: Iterable[str], dim: int = 8, seed: int = 0) -> str:
    """Write a GloVe-format text file (``word v_1 ... v_dim`` per line, no header) of N(0, 0.5²) vectors.

    The vectors depend only on ``seed`` and the word order; the global RNG is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    unique = list(dict.fromkeys(str(word) for word in words))
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn(len(unique), dim, generator=generator) * 0.5
    lines = (f"{word} {' '.join(f'{value:.6f}' for value in row)}\n" for word, row in zip(unique, matrix.tolist(), strict=True))
    target.write_text("".join(lines), encoding="utf-8")
    return str(target)


def make_pickle_only_model(directory: str | os.PathLike[str]) -> str:
    """Write config.json + ``pytorch_model.bin`` (a pickled state dict) only: the unsafe case."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    config = _tiny_config(len(SPECIAL_TOKENS), 32, 1, 2)
    config.save_pretrained(str(target))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = BertModel(config).state_dict()
    torch.save(state, target / "pytorch_model.bin")
    return str(target)


def make_weightless_model(directory: str | os.PathLike[str]) -> str:
    """Write a model directory with config.json (and a vocab) but no weight files."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    config = _tiny_config(len(SPECIAL_TOKENS), 32, 1, 2).to_dict()
    (target / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (target / "vocab.txt").write_text("".join(f"{token}\n" for token in SPECIAL_TOKENS), encoding="utf-8")
    return str(target)


def make_tiny_t5(directory: str | os.PathLike[str], vocab_words: Iterable[str] | None = None, seed: int = 0) -> str:
    """A random-init tiny T5 (an encoder-decoder LM: ``AutoModelForSeq2SeqLM``) with the tiny WordPiece tokenizer."""
    from transformers import T5Config, T5ForConditionalGeneration

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    vocab = _vocab(vocab_words)
    _write_tokenizer(target, vocab)
    config = T5Config(vocab_size=len(vocab), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
                      pad_token_id=0, eos_token_id=vocab.index("[SEP]"), decoder_start_token_id=vocab.index("[CLS]"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5ForConditionalGeneration(config)
    model.save_pretrained(str(target))
    return str(target)
