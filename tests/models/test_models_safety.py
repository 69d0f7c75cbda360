"""Weight safety: only safetensors are loaded, pickles are never touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from transferkit.core.errors import UserError
from transferkit.models import check_weights, load_backbone
from transferkit.testing.tiny import make_pickle_only_model, make_weightless_model


@pytest.fixture()
def no_torch_load(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make torch.load fail the test if anything calls it; returns the list of calls."""
    calls: list[str] = []

    def forbidden(*args: object, **kwargs: object) -> None:
        calls.append(repr(args[:1]))
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", forbidden)
    return calls


def test_safetensors_dir_is_ok(tiny_bert_dir: str) -> None:
    assert check_weights(tiny_bert_dir) == ["model.safetensors"]


def test_pickle_only_dir_is_refused(tmp_path: Path, no_torch_load: list[str]) -> None:
    path = make_pickle_only_model(tmp_path / "pickled")
    expected = r"has only pickle weights \(pytorch_model\.bin\); transferkit never unpickles: convert to safetensors"
    with pytest.raises(UserError, match=expected):
        check_weights(path)
    with pytest.raises(UserError, match=expected):
        load_backbone(path)
    assert no_torch_load == []


@pytest.mark.parametrize("name", ["model.pt", "weights.pkl", "last.ckpt"])
def test_other_pickle_formats_are_refused(tmp_path: Path, name: str, no_torch_load: list[str]) -> None:
    path = make_weightless_model(tmp_path / "m")
    (Path(path) / name).write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(UserError, match=f"only pickle weights \\({name}\\)"):
        load_backbone(path)
    assert no_torch_load == []


def test_weightless_dir_is_refused(tmp_path: Path) -> None:
    path = make_weightless_model(tmp_path / "empty")
    with pytest.raises(UserError, match=r"has no model weights \(model\.safetensors\)"):
        load_backbone(path)


def test_config_is_required(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="has no config.json"):
        check_weights(tmp_path)


def test_safetensors_preferred_over_pickle(tiny_bert_dir: str, tmp_path: Path, no_torch_load: list[str]) -> None:
    path = tmp_path / "both"
    shutil.copytree(tiny_bert_dir, path)
    (path / "pytorch_model.bin").write_bytes(b"garbage that would crash an unpickler")
    loaded = load_backbone(str(path))
    assert loaded.backbone.config.hidden_size == 32
    assert no_torch_load == []


def test_tiny_and_random_init_never_call_torch_load(tiny_bert_dir: str, no_torch_load: list[str]) -> None:
    load_backbone(tiny_bert_dir)
    load_backbone(tiny_bert_dir, random_init=True)
    assert no_torch_load == []
