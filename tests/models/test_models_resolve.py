"""resolve(): catalog names, local directories, path-like strings and hub ids."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from transferkit.core.errors import UserError
from transferkit.models import resolve


def test_catalog_name_resolves_to_local_dir(minilm_dir: str) -> None:
    resolved = resolve("minilm-l6")
    assert resolved.is_local and resolved.ref == "minilm-l6"
    assert os.path.samefile(resolved.path_or_id, minilm_dir)


def test_existing_dir_resolves_to_itself(tiny_bert_dir: str) -> None:
    resolved = resolve(tiny_bert_dir)
    assert resolved.is_local
    assert os.path.samefile(resolved.path_or_id, tiny_bert_dir)


def test_relative_and_home_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve("./model").path_or_id == str(tmp_path / "model")
    assert resolve("model").is_local  # an existing dir wins over the hub id reading
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve("~/model").path_or_id == str(tmp_path / "model")


def test_org_name_is_hub_id_even_offline(offline: None) -> None:
    resolved = resolve("sentence-transformers/all-MiniLM-L6-v2")
    assert not resolved.is_local
    assert resolved.path_or_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_plain_name_is_hub_id_when_online(online: None) -> None:
    resolved = resolve("roberta-base")
    assert (resolved.path_or_id, resolved.is_local) == ("roberta-base", False)


def test_unknown_plain_name_offline_lists_catalog(offline: None) -> None:
    with pytest.raises(UserError) as info:
        resolve("minilm-l5")
    message = str(info.value)
    assert "unknown model 'minilm-l5'" in message
    assert "did you mean 'minilm-l6'" in message
    assert "bert-base-uncased" in message and "minilm-l6" in message
    assert "\n" not in message


@pytest.mark.parametrize("ref", ["./missing-model", "~/missing-model-xyz", "/no/such/dir", "a/b/c", "../up"])
def test_missing_path_like(ref: str, online: None) -> None:
    with pytest.raises(UserError, match="model directory not found"):
        resolve(ref)


def test_file_is_not_a_model_dir(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"")
    with pytest.raises(UserError, match="is a file, not a directory"):
        resolve(str(path))


@pytest.mark.parametrize("ref", ["", "   "])
def test_empty_ref(ref: str) -> None:
    with pytest.raises(UserError, match="empty model reference"):
        resolve(ref)


def test_invalid_name(online: None) -> None:
    with pytest.raises(UserError, match="not a catalog name"):
        resolve("bad name!")
