"""Catalog models derived from MiniLM-L6: ``random-bert`` and depth truncation ``NAME@k``; the shared cache writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from transferkit.core.errors import UserError
from transferkit.models import (
    available,
    catalog_entries,
    catalog_names,
    derived,
    fingerprint_dir,
    get_entry,
    load_backbone,
)
from transferkit.models._materialise import manifest_ok, materialise, write_json
from transferkit.models.loading import resolve

SENTENCES = ["A man is playing a guitar.", "The stock market fell sharply this morning after the news.", "Short."]


def _state(directory: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(os.path.join(directory, "model.safetensors"))


def test_random_bert_is_the_same_in_fresh_caches(minilm_dir: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    directories = []
    for cache in ("a", "b"):
        monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / cache))
        torch.manual_seed(123)
        directories.append(derived.resolve_random())
        after = torch.rand(3)
        assert torch.equal(after, _after_seed(123))  # the conversion left the caller's RNG as it was
    first, second = (_state(directory) for directory in directories)
    assert directories[0] != directories[1] and first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert fingerprint_dir(directories[0]) == fingerprint_dir(directories[1])
    pretrained = _state(minilm_dir)["encoder.layer.0.attention.self.query.weight"]
    assert not torch.allclose(first["encoder.layer.0.attention.self.query.weight"], pretrained)
    assert abs(float(first["encoder.layer.0.attention.self.query.weight"].std()) - 0.02) < 0.002  # BERT init


def _after_seed(seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(3)


def test_random_bert_loads_like_any_catalog_model(minilm_dir: str) -> None:
    entry = get_entry("random-bert")
    assert entry is not None and available(entry) and "negative control" in entry.description
    loaded = load_backbone("random-bert")
    weights = Path(loaded.path) / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    assert type(loaded.backbone).__name__ == "BertModel" and not loaded.random_init
    assert sum(p.numel() for p in loaded.backbone.parameters()) == entry.params
    reference = load_backbone(minilm_dir).tokenizer
    assert loaded.tokenizer(SENTENCES)["input_ids"] == reference(SENTENCES)["input_ids"]
    assert entry.resolve() == loaded.path and weights.stat().st_mtime_ns == mtime  # written once


def test_truncation_equals_the_base_hidden_state(minilm_dir: str) -> None:
    base, cut = load_backbone("minilm-l6"), load_backbone("minilm-l6@3")
    assert cut.backbone.config.num_hidden_layers == 3 and len(cut.backbone.encoder.layer) == 3
    batch = base.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = base.backbone(**batch, output_hidden_states=True).hidden_states[3]  # (batch, seq, hidden)
        got = cut.backbone(**batch).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    entry = get_entry("minilm-l6@3")
    assert entry is not None and (entry.layers, entry.hidden_size, entry.architecture) == (3, 384, "bert")
    assert sum(p.numel() for p in cut.backbone.parameters()) == entry.params


def test_listed_and_unlisted_truncations() -> None:
    listed = ["minilm-l6@3", "multilingual-e5-small@4", "multilingual-e5-small@8", "mpnet-base@6"]
    assert [name for name in catalog_names() if "@" in name] == listed
    assert all(entry.kind == "transformer" for entry in catalog_entries() if "@" in entry.name)
    unlisted = get_entry("minilm-l6@2")
    assert unlisted is not None and unlisted.layers == 2 and "minilm-l6@2" not in catalog_names()
    assert get_entry("no-such-model@2") is None and get_entry("minilm-l6@3@2") is None


@pytest.mark.parametrize(("name", "message"), [
    ("minilm-l6@9", "'minilm-l6@9': minilm-l6 has 6 layers: keep the first k with minilm-l6@k, k from 1 to 5"),
    ("minilm-l6@6", "minilm-l6 has 6 layers"),
    ("minilm-l6@0", "minilm-l6 has 6 layers"),
    ("minilm-l6@three", "minilm-l6 has 6 layers"),
    ("glove-6b-50d@2", "glove-6b-50d is a static word-vector model"),
    ("use-multilingual@1", "use-multilingual is a frozen text encoder"),
])
def test_invalid_truncations_say_what_to_do(name: str, message: str) -> None:
    for call in (get_entry, resolve, load_backbone):
        with pytest.raises(UserError) as info:
            call(name)
        assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("model_type", ["bert", "mpnet"])
def test_layer_params_formula(model_type: str) -> None:
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.for_model(model_type, hidden_size=32, intermediate_size=128, num_attention_heads=4,
                                  num_hidden_layers=1, vocab_size=50)
    layer = AutoModel.from_config(config).encoder.layer[0]
    assert sum(p.numel() for p in layer.parameters()) == derived.layer_params(32, 128)


def test_materialise_leaves_nothing_behind_a_failed_build(tmp_path: Path) -> None:
    def broken(work: Path) -> None:
        work.mkdir()
        (work / "config.json").write_text("{}")
        raise RuntimeError("conversion failed")

    final = tmp_path / "models" / "broken"
    with pytest.raises(RuntimeError, match="conversion failed"):
        materialise(final, broken, lambda directory: manifest_ok(directory, {"name": "broken"}))
    assert list((tmp_path / "models").iterdir()) == []


def test_materialise_stamps_content_mtimes_and_manifest(tmp_path: Path) -> None:
    def build(work: Path) -> None:
        work.mkdir()
        (work / "config.json").write_text('{"a": 1}')
        write_json(work / "manifest.json", {"name": "toy"})

    one = materialise(tmp_path / "one", build, lambda directory: manifest_ok(directory, {"name": "toy"}))
    two = materialise(tmp_path / "two", build, lambda directory: manifest_ok(directory, {"name": "toy"}))
    assert (one / "config.json").stat().st_mtime_ns == (two / "config.json").stat().st_mtime_ns
    manifest = json.loads((one / "manifest.json").read_text())
    assert manifest["name"] == "toy" and manifest["files"]["config.json"]["bytes"] == 8
    assert manifest_ok(one, {"name": "toy"}) and not manifest_ok(one, {"name": "other"})
    (one / "config.json").write_text("{}")  # a damaged copy is rebuilt
    assert not manifest_ok(one, {"name": "toy"})
