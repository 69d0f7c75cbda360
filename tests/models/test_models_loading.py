"""load_backbone / load_config / save_backbone on offline models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import BertModel

from transferkit.core.errors import UserError
from transferkit.models import LoadedModel, load_backbone, load_config, save_backbone
from transferkit.models import loading as loading_module
from transferkit.testing.tiny import make_tiny_bert


def test_tiny_bert_loads_and_runs(tiny_bert_dir: str) -> None:
    loaded = load_backbone(tiny_bert_dir)
    assert isinstance(loaded, LoadedModel)
    assert type(loaded.backbone) is BertModel  # base model, no head
    assert loaded.is_local and not loaded.random_init
    assert os.path.samefile(loaded.path, tiny_bert_dir)
    assert loaded.tokenizer.is_fast
    assert loaded.backbone.config._attn_implementation == "sdpa"
    batch = loaded.tokenizer(["the quokka movie was great!", "zebra"], padding=True, return_tensors="pt")
    tokens = loaded.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert tokens[:4] == ["[CLS]", "the", "quokka", "movie"] and "[UNK]" not in tokens
    with torch.no_grad():
        out = loaded.backbone(**batch)
    assert out.last_hidden_state.shape == (2, batch["input_ids"].shape[1], 32)


def test_unknown_words_split_into_characters(tiny_bert_dir: str) -> None:
    tokenizer = load_backbone(tiny_bert_dir).tokenizer
    assert tokenizer.tokenize("xyz") == ["x", "##y", "##z"]


def test_make_tiny_bert_is_deterministic_and_fast(tmp_path: Path) -> None:
    import time

    start = time.perf_counter()
    first = load_backbone(make_tiny_bert(tmp_path / "a", seed=3)).backbone
    elapsed = time.perf_counter() - start
    second = load_backbone(make_tiny_bert(tmp_path / "b", seed=3)).backbone
    third = load_backbone(make_tiny_bert(tmp_path / "c", seed=4)).backbone
    weight = "embeddings.word_embeddings.weight"
    assert torch.equal(first.state_dict()[weight], second.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], third.state_dict()[weight])
    assert elapsed < 5  # generous for slow CI; typically well under a second


def test_random_init_differs_from_pretrained(tiny_bert_dir: str) -> None:
    pretrained = load_backbone(tiny_bert_dir)
    torch.manual_seed(123)
    random_a = load_backbone(tiny_bert_dir, random_init=True)
    torch.manual_seed(123)
    random_b = load_backbone(tiny_bert_dir, random_init=True)
    assert type(random_a.backbone) is type(pretrained.backbone)
    assert random_a.random_init and random_a.fingerprint.endswith("+random-init")
    for name, tensor in pretrained.backbone.state_dict().items():
        assert random_a.backbone.state_dict()[name].shape == tensor.shape
    weight = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(pretrained.backbone.state_dict()[weight], random_a.backbone.state_dict()[weight])
    assert torch.equal(random_a.backbone.state_dict()[weight], random_b.backbone.state_dict()[weight])


def test_random_init_of_real_model_differs(minilm_dir: str) -> None:
    pretrained = load_backbone("minilm-l6")
    torch.manual_seed(0)
    baseline = load_backbone("minilm-l6", random_init=True)
    weight = "encoder.layer.5.output.dense.weight"
    assert not torch.allclose(pretrained.backbone.state_dict()[weight], baseline.backbone.state_dict()[weight])


def test_fingerprint_stable_and_distinct(tiny_bert_dir: str, tmp_path: Path) -> None:
    first = load_backbone(tiny_bert_dir).fingerprint
    assert first == load_backbone(tiny_bert_dir).fingerprint
    other = make_tiny_bert(tmp_path / "other", vocab_words=["different", "vocabulary", "words"])
    assert load_backbone(other).fingerprint != first


def test_fingerprint_follows_weight_mtime(tiny_copy: str) -> None:
    before = load_backbone(tiny_copy).fingerprint
    weights = Path(tiny_copy) / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_backbone(tiny_copy).fingerprint != before


def test_minilm_loads(minilm_dir: str) -> None:
    loaded = load_backbone("minilm-l6")
    assert loaded.ref == "minilm-l6" and loaded.is_local
    assert loaded.fingerprint == load_backbone(minilm_dir).fingerprint
    batch = loaded.tokenizer(["transfer learning works"], return_tensors="pt")
    with torch.no_grad():
        out = loaded.backbone(**batch)
    assert out.last_hidden_state.shape[-1] == 384


def test_load_config(tiny_bert_dir: str) -> None:
    config = load_config(tiny_bert_dir)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 32, 2)


def test_save_backbone_round_trip(tiny_bert_dir: str, tmp_path: Path) -> None:
    loaded = load_backbone(tiny_bert_dir)
    target = save_backbone(loaded, None, tmp_path / "saved")
    assert (Path(target) / "model.safetensors").is_file()
    again = load_backbone(target)
    for name, tensor in loaded.backbone.state_dict().items():
        assert torch.equal(tensor, again.backbone.state_dict()[name])
    text = "the quokka movie"
    assert again.tokenizer(text)["input_ids"] == loaded.tokenizer(text)["input_ids"]
    bare = save_backbone(loaded.backbone, loaded.tokenizer, tmp_path / "bare")
    assert load_backbone(bare).backbone.config.hidden_size == 32
    with pytest.raises(ValueError, match="needs a tokenizer"):
        save_backbone(loaded.backbone, None, tmp_path / "none")


def test_hub_failure_is_one_line_user_error(online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection.")

    monkeypatch.setattr(loading_module.AutoConfig, "from_pretrained", unreachable)
    with pytest.raises(UserError) as info:
        load_backbone("bert-base-uncased")
    message = str(info.value)
    assert message.startswith("could not load 'bert-base-uncased' from the Hugging Face hub (offline?)")
    assert "\n" not in message
    with pytest.raises(UserError, match=r"catalog models: bert-base-uncased, (\S+, )*minilm-l6"):
        load_backbone("some-unknown-model")


def test_offline_hub_id_fails_fast_without_network(offline: None) -> None:
    with pytest.raises(UserError, match="from the Hugging Face hub") as info:
        load_backbone("transferkit-tests/definitely-not-cached")
    assert "no local directory 'transferkit-tests/definitely-not-cached' either" in str(info.value)


def test_broken_local_config_is_user_error(tiny_copy: str) -> None:
    (Path(tiny_copy) / "config.json").write_text('{"model_type": "no-such-architecture"}', encoding="utf-8")
    with pytest.raises(UserError, match="could not load the config from"):
        load_backbone(tiny_copy)
