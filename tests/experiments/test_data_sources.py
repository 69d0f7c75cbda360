"""Several test sets, named extra sources, strategy defaults, the top-level API: through a real (tiny) run."""

from __future__ import annotations

import os

import numpy as np
import pytest

import transferkit
from tests.helpers import one_line_error, run_cli
from transferkit.core.config import RunConfig, apply_overrides
from transferkit.experiments.run import train
from transferkit.testing import write_toy_csv


def config(model: str, files: dict[str, str], output: str, **data) -> RunConfig:
    return RunConfig.from_dict({
        "model": model, "strategy": "finetune", "output": output,
        "data": {"train": files["train"], "eval": files["eval"], "text_column": "sentence", "max_length": 64, **data},
        "training": {"epochs": 6, "batch_size": 16, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0}})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sources")
    return {"train": write_toy_csv(str(root / "train.csv"), 240, seed=0),
            "eval": write_toy_csv(str(root / "eval.csv"), 80, seed=1),
            "a": write_toy_csv(str(root / "a.csv"), 60, seed=2),
            "b": write_toy_csv(str(root / "b.csv"), 90, seed=3)}


def test_every_named_test_set_is_evaluated_stored_and_carded(tiny_model, files, tmp_path) -> None:
    result = train(config(tiny_model, files, str(tmp_path / "run"), test={"en": files["a"], "zh": files["b"]}))
    tests = result.metrics["test"]
    assert set(tests) == {"en", "zh"} and result.metrics["selected_on"] == "eval"
    assert tests["en"]["confusion_matrix"] != tests["zh"]["confusion_matrix"]  # 60 vs 90 examples
    assert sum(map(sum, tests["zh"]["confusion_matrix"])) == 90
    reloaded = transferkit.evaluate(result.output, files["b"])
    assert reloaded["accuracy"] == pytest.approx(tests["zh"]["accuracy"])
    with open(os.path.join(result.output, "card.md")) as handle:
        card = handle.read()
    assert "zh" in card and "en" in card and "selection split" in card


def test_the_top_level_api_loads_a_run_and_predicts_from_python(tiny_model, files, tmp_path) -> None:
    result = transferkit.train(config(tiny_model, files, str(tmp_path / "run")))
    model = transferkit.load(result.output)
    texts = ["good great excellent", "bad awful terrible"]
    labels, probabilities = model.predict(texts), model.predict_proba(texts)
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(1), 1)
    assert labels == [model.labels[i] for i in probabilities.argmax(1)]
    target = str(tmp_path / "p.jsonl")
    assert transferkit.predict(result.output, files["a"], target) == 60 and os.path.exists(target)


def test_an_unreadable_test_file_in_a_mapping_is_named(tiny_model, files, tmp_path) -> None:
    missing = str(tmp_path / "nope.csv")
    one_line_error(lambda: train(config(tiny_model, files, str(tmp_path / "run"), test={"en": files["a"], "zh": missing})),
                   "nope.csv")
    assert not os.path.exists(str(tmp_path / "run.partial"))


def test_a_named_source_with_a_missing_column_is_named(tiny_model, files, tmp_path) -> None:
    sources = {"extra": {"path": files["a"], "text_column": "review"}}
    one_line_error(lambda: train(config(tiny_model, files, str(tmp_path / "run"), sources=sources)), "review")


def test_sources_and_test_sets_take_dotted_overrides(tiny_model, files) -> None:
    cfg = apply_overrides(config(tiny_model, files, "x"), [f"data.test.zh={files['b']}",
                                                           f"data.sources.target_unlabeled={files['a']}"])
    assert cfg.data.test == {"zh": files["b"]} and cfg.data.sources == {"target_unlabeled": files["a"]}


def test_lora_without_a_learning_rate_gets_its_own_default(tiny_model, files, tmp_path, capsys, monkeypatch) -> None:
    code, _, err = run_cli(["train", "--model", tiny_model, "--strategy", "lora", "--train", files["train"],
                            "--eval", files["eval"], "--text-column", "sentence", "--output", str(tmp_path / "lora"),
                            "--set", "training.epochs=1", "--set", "training.progress=false"], capsys, monkeypatch)
    assert code == 0, err
    import yaml

    with open(tmp_path / "lora" / "config.yaml") as handle:
        assert yaml.safe_load(handle)["training"]["learning_rate"] == pytest.approx(1e-3)
    code, _, err = run_cli(["train", "--model", tiny_model, "--strategy", "lora", "--train", files["train"],
                            "--eval", files["eval"], "--text-column", "sentence", "--output", str(tmp_path / "set"),
                            "--set", "training.epochs=1", "--set", "training.progress=false",
                            "--set", "training.learning_rate=2e-5"], capsys, monkeypatch)
    with open(tmp_path / "set" / "config.yaml") as handle:
        assert yaml.safe_load(handle)["training"]["learning_rate"] == pytest.approx(2e-5)


def test_a_test_set_with_its_own_columns_and_format(tiny_model, files, tmp_path) -> None:
    """Cross-lingual test sets come from other corpora: each names its own columns (and format)."""
    other = tmp_path / "other.tsv"
    with open(files["b"], encoding="utf-8") as source:
        rows = [line.rstrip("\n").rsplit(",", 1) for line in source][1:]
    other.write_text("stars\treview\n" + "".join(f"{label}\t{text}\n" for text, label in rows), encoding="utf-8")
    test = {"same": files["b"], "other": {"path": str(other), "text_column": "review", "label_column": "stars"}}
    result = train(config(tiny_model, files, str(tmp_path / "run"), test=test))
    same, moved = result.metrics["test"]["same"], result.metrics["test"]["other"]
    assert same["accuracy"] == moved["accuracy"] and same["confusion_matrix"] == moved["confusion_matrix"]
    bad = {"other": {"path": str(other), "text_colum": "review"}}
    one_line_error(lambda: train(config(tiny_model, files, str(tmp_path / "bad"), test=bad)),
                   "data.test.other", "text_colum")


def test_a_test_set_whose_label_names_differ_from_training_lists_both(tiny_model, files, tmp_path) -> None:
    """Cross-lingual corpora often spell labels differently (1/0 vs pos/neg): one line names both sets."""
    other = tmp_path / "numeric.csv"
    other.write_text("sentence,label\ngood film,1\nbad film,0\n", encoding="utf-8")
    run = config(tiny_model, files, str(tmp_path / "run"), test={"zh": str(other)})
    one_line_error(lambda: train(run), "numeric.csv", "labels that training never saw: '1', '0'", "'neg', 'pos'")
    assert not os.path.exists(str(tmp_path / "run"))
