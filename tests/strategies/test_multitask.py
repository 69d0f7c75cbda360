"""``multitask``: a shared encoder with a head per task, per-task evaluation, saved heads, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from transferkit.core.config import RunConfig, apply_overrides
from transferkit.core.errors import UserError
from transferkit.experiments.api import load, predict_file
from transferkit.experiments.run import train
from transferkit.testing import toy_sentences, write_toy_conll

TRAINING = {"epochs": 6, "batch_size": 16, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0}


def _config(model: str, strategy, files: dict[str, str], output: str, sources: dict | None = None,
            **data) -> RunConfig:
    return RunConfig.from_dict({"model": model, "strategy": strategy, "output": output,
                                "data": {"train": files["train"], "eval": files["eval"], "text_column": "sentence",
                                         "max_length": 64, "sources": sources or {}, **data},
                                "training": TRAINING})


@pytest.fixture(scope="module")
def related(tmp_path_factory) -> str:
    """The same sentiment concept with another label set (good/bad) and 480 labels: a related source task."""
    path = tmp_path_factory.mktemp("related") / "related.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "opinion"])
        writer.writerows((text, "good" if label == "pos" else "bad") for text, label in toy_sentences(480, seed=7))
    return str(path)


def test_a_related_task_transfers_through_the_shared_encoder(tiny_model, toy_files, related, tmp_path) -> None:
    """4 labels per class alone vs the same 4 + a related task with its own head: the encoder learnt
    from the related labels serves the target's head."""
    few = {"budget": 4, "budget_seed": 0}
    alone = train(_config(tiny_model, "finetune", toy_files, str(tmp_path / "alone"), **few))
    source = {"related": {"path": related, "task": "classification", "label_column": "opinion"}}
    together = train(_config(tiny_model, "multitask", toy_files, str(tmp_path / "mtl"), source, **few))
    assert together.metrics["eval"]["accuracy"] >= alone.metrics["eval"]["accuracy"] + 0.1, (
        alone.metrics["eval"]["accuracy"], together.metrics["eval"]["accuracy"])
    assert together.metrics["tasks"]["related"]["accuracy"] >= 0.85
    evaluated = [entry["eval"] for entry in together.history if "eval" in entry]
    assert evaluated and all("related/accuracy" in metrics for metrics in evaluated)  # every task, every epoch


def test_mixed_task_kinds_save_every_head_and_predict_by_task(tiny_model, toy_files, tmp_path) -> None:
    conll = write_toy_conll(str(tmp_path / "people.conll"), 240, seed=0)
    output = str(tmp_path / "mtl")
    config = _config(tiny_model, {"name": "multitask", "sampling": "round_robin"}, toy_files, output,
                     {"ner": {"path": conll, "task": "token_classification"}})
    result = train(config)
    assert result.metrics["eval"]["accuracy"] >= 0.8 and result.metrics["tasks"]["ner"]["f1"] >= 0.2, result.metrics
    meta = json.loads(Path(output, "model", "transferkit.json").read_text())
    assert meta["heads"]["ner"]["task"] == "token_classification"
    model = load(output)
    assert model.predict(["a great film"])[0] == "pos"
    query = tmp_path / "query.conll"
    query.write_text("alice NN O\nvisited NN O\nparis NN O\n\n")
    out = tmp_path / "tags.jsonl"
    assert predict_file(output, str(query), str(out), task_name="ner") == 1
    record = json.loads(out.read_text().splitlines()[0])
    assert len(record["tags"]) == 3
    with pytest.raises(UserError, match="no task 'nope'"):
        predict_file(output, str(query), str(tmp_path / "x.jsonl"), task_name="nope")


def test_weights_override_and_bad_input(tiny_model, toy_files, related, tmp_path) -> None:
    config = apply_overrides(RunConfig(), ["strategy=multitask", "strategy.weights.main=0.5", "strategy.weights.r=2"])
    assert config.strategy.options["weights"] == {"main": 0.5, "r": 2}
    source = {"related": {"path": related, "task": "classification", "label_column": "opinion"}}
    cases = [
        ({"name": "multitask", "weights": {"nope": 1.0}}, source, "weights.nope: no such task"),
        ({"name": "multitask", "weights": {"main": 0}}, source, "must be > 0"),
        ("multitask", {"plain": related}, "data.sources.plain: strategy 'multitask' trains tasks"),
        ("multitask", {"main": {"path": related, "task": "classification"}}, "'main' names the run's own task"),
        ("finetune", {"ner": {"path": related, "task": "token_classification"}},
         "sources of other tasks need a multi-task strategy"),
    ]
    for strategy, sources, message in cases:
        with pytest.raises(UserError, match=message):
            train(_config(tiny_model, strategy, toy_files, str(tmp_path / "out"), sources))
