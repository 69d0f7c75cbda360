"""Sequential transfer (``init_from``): a run starts from another run's trained encoder (and head)."""

from __future__ import annotations

import csv
import json
import os

import pytest

import transferkit
from tests.helpers import one_line_error
from transferkit.core.config import RunConfig
from transferkit.experiments.run import train
from transferkit.testing import write_toy_csv


def config(model: str, train_file: str, eval_file: str, output: str, strategy: str = "finetune",
           **extra) -> RunConfig:
    raw = {"model": model, "strategy": strategy, "output": output,
           "data": {"train": train_file, "eval": eval_file, "text_column": "sentence", "max_length": 64},
           "training": {"epochs": 6, "batch_size": 16, "learning_rate": 3e-3, "progress": False,
                        "checkpoint_every": 0, "eval_every_epoch": False}}
    for key, value in extra.items():
        section, _, name = key.partition("__")
        if name:
            raw[section][name] = value
        else:
            raw[section] = value
    return RunConfig.from_dict(raw)


def relabel(source: str, target: str, names: dict[str, str]) -> str:
    with open(source, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with open(target, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sentence", "label"])
        writer.writeheader()
        writer.writerows({"sentence": r["sentence"], "label": names[r["label"]]} for r in rows)
    return target


@pytest.fixture(scope="module")
def source_run(tiny_model, tmp_path_factory) -> tuple[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("init_from")
    files = {"train": write_toy_csv(str(root / "train.csv"), 240, seed=0),
             "eval": write_toy_csv(str(root / "eval.csv"), 120, seed=1),
             "few": write_toy_csv(str(root / "few.csv"), 40, seed=2)}
    result = train(config(tiny_model, files["train"], files["eval"], str(root / "source")))
    assert result.metrics["eval"]["accuracy"] >= 0.9, result.metrics["eval"]
    return result.output, files


def few_shot(tiny_model, files, output, **extra) -> RunConfig:
    """4 labels per class, one epoch at a tiny learning rate: alone, that learns nothing."""
    return config(tiny_model, files["few"], files["eval"], output, data__budget=4,
                  training__epochs=1, training__learning_rate=1e-6, **extra)


def test_a_run_started_from_another_keeps_what_it_learned(tiny_model, source_run, tmp_path) -> None:
    source, files = source_run
    alone = train(few_shot(tiny_model, files, str(tmp_path / "alone"))).metrics["eval"]["accuracy"]
    started = train(few_shot(tiny_model, files, str(tmp_path / "started"), init_from=source))
    assert started.metrics["eval"]["accuracy"] >= 0.9 > alone + 0.2, (started.metrics["eval"], alone)
    with open(os.path.join(started.output, "model", "transferkit.json"), encoding="utf-8") as handle:
        assert json.load(handle)["init_from"]["head"] == "kept"
    # the saved model holds full weights: it predicts the same without the source run's help
    reloaded = transferkit.evaluate(started.output, files["eval"])
    assert reloaded["accuracy"] == pytest.approx(started.metrics["eval"]["accuracy"])


def test_a_new_label_set_gets_a_new_head_and_lora_on_top_saves_full_weights(tiny_model, source_run, tmp_path) -> None:
    source, files = source_run
    names = {"pos": "positive", "neg": "negative"}
    few = relabel(files["few"], str(tmp_path / "few.csv"), names)
    held_out = relabel(files["eval"], str(tmp_path / "eval.csv"), names)
    run = config(tiny_model, few, held_out, str(tmp_path / "lora"), strategy="lora", init_from=source,
                 training__epochs=2)
    result = train(run)
    with open(os.path.join(result.output, "model", "transferkit.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    assert meta["init_from"]["head"].startswith("new") and "base_model" not in meta
    reloaded = transferkit.evaluate(result.output, held_out)
    assert reloaded["accuracy"] == pytest.approx(result.metrics["eval"]["accuracy"])


def test_a_run_that_cannot_start_from_the_source_is_a_one_line_error(tiny_model, source_run, tmp_path) -> None:
    source, files = source_run
    one_line_error(lambda: train(few_shot(tiny_model, files, str(tmp_path / "a"), init_from=str(tmp_path / "none"))),
                   "not a finished neural transferkit run")
    one_line_error(lambda: train(few_shot("minilm-l6", files, str(tmp_path / "b"), init_from=source)),
                   "init_from", "trained from model", "set model:")
    tfidf = config(tiny_model, files["few"], files["eval"], str(tmp_path / "c"), strategy="tfidf", init_from=source)
    one_line_error(lambda: train(tfidf), "init_from", "tfidf")
    assert not os.path.exists(str(tmp_path / "c"))


def test_a_grid_axis_over_init_from_compares_with_and_without_the_source_run(tiny_model, source_run, tmp_path) -> None:
    from transferkit.experiments.grid import expand, parse_grid

    source, files = source_run
    base = {"model": tiny_model, "data": {"train": files["few"], "text_column": "sentence"}}
    cells = expand(parse_grid({"base": base, "axes": {"init_from": [None, source], "data.budget": [4, 8]}}),
                   str(tmp_path))
    assert [(a["init_from"], c.init_from) for a, c in cells][::2] == [(None, None), (source, source)]
    missing = {"base": base, "axes": {"init_from": [str(tmp_path / "nowhere")]}}
    one_line_error(lambda: expand(parse_grid(missing), str(tmp_path)), "init_from", "not a finished neural")
