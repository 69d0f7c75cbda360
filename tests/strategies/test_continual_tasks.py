"""The task setting of a continual stream (a head per stage, the stage named at prediction) and the ``adapters``
strategy (a LoRA adapter and head per stage: no forgetting by construction), on a tiny model and the two-stage toy
stream of test_continual (sentiment pos/neg, then topic cast/story)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os

import pytest

from tests.helpers import one_line_error, run_cli
from tests.strategies.test_continual import Crash, config, write_topic_csv
from transferkit.experiments.api import evaluate_run, export_run, load, predict_file
from transferkit.experiments.run import train
from transferkit.models import load_backbone
from transferkit.strategies.continual.adapters import Adapters, AdaptersConfig
from transferkit.tasks import TASKS
from transferkit.testing import write_toy_csv

ADAPTER_STEP = {"learning_rate": 3e-2}
"""LoRA on the frozen random tiny encoder learns the toy in a few passes only with a larger step."""


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    root = tmp_path_factory.mktemp("task_stream")
    return [{"name": "sentiment", "path": write_toy_csv(str(root / "s_train.csv"), 160, seed=0),
             "test": write_toy_csv(str(root / "s_test.csv"), 80, seed=1)},
            {"name": "topic", "path": write_topic_csv(str(root / "t_train.csv"), 160, seed=2),
             "test": write_topic_csv(str(root / "t_test.csv"), 80, seed=3)}]


def task_config(strategy: str, stages: list[dict[str, str]], output: str, tiny_model: str, setting: str = "task",
                **training: object) -> object:
    settings = config(strategy, stages, output, tiny_model)
    settings.continual = dataclasses.replace(settings.continual, setting=setting)
    settings.mirror_continual()
    settings.training = dataclasses.replace(settings.training, **training)
    return settings


@pytest.fixture(scope="module")
def runs(stream, tiny_model: str, tmp_path_factory) -> dict[str, str]:
    """Every continual strategy once in the task setting (two passes per stage; adapters four, at a larger step)."""
    root = tmp_path_factory.mktemp("task_runs")
    outputs = {}
    for name in ("sequential", "replay", "ewc", "lwf", "joint", "adapters"):
        extra = {"epochs": 4, **ADAPTER_STEP} if name == "adapters" else {"epochs": 2}
        outputs[name] = train(task_config(name, stream, str(root / name), tiny_model, **extra)).output
    return outputs


def metrics_of(output: str) -> dict:
    with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.parametrize("strategy", ["sequential", "replay", "ewc", "lwf", "joint", "adapters"])
def test_every_stage_is_scored_over_its_own_classes(runs: dict[str, str], stream, strategy: str) -> None:
    """R is T×T (joint: its last row), FWT is undefined, and each stage's test metrics (over its own two labels) are
    R's last row, and what ``evaluate --task STAGE`` measures on the saved run."""
    metrics = metrics_of(runs[strategy])
    block = metrics["continual"]
    assert block["setting"] == "task" and block["names"] == ["sentiment", "topic"] and block["fwt"] is None
    assert len(block["matrix"]) == 2 and len(block["matrix"][-1]) == 2
    for i, stage in enumerate(stream):
        measured = metrics["test"][stage["name"]]
        assert len(measured["confusion_matrix"]) == 2  # the stage's own labels, not all four
        assert measured["accuracy"] == pytest.approx(block["matrix"][-1][i], abs=1e-9)
        reloaded = evaluate_run(runs[strategy], stage["test"], task_name=stage["name"])
        assert reloaded["accuracy"] == pytest.approx(measured["accuracy"], abs=1e-9)
        assert reloaded["confusion_matrix"] == measured["confusion_matrix"]
    assert 0 <= metrics["eval"]["accuracy"] <= 1


def test_sequential_learns_both_stages_with_the_stage_named(runs: dict[str, str]) -> None:
    matrix = metrics_of(runs["sequential"])["continual"]["matrix"]
    assert matrix[0][0] >= 0.8 and matrix[1][1] >= 0.8, matrix
    assert matrix[0][1] > 0.2, matrix  # topic before its stage: argmax over its own two classes (class setting: 0)


def test_predict_needs_the_stage(runs: dict[str, str], stream, tmp_path, capsys, monkeypatch) -> None:
    """Without --task: a one-line error naming the stages (CLI, predict_file, Python); with it: that stage's labels
    only, probabilities over them; an unknown stage is a one-line error listing them; export is refused."""
    run, topic = runs["sequential"], stream[1]["test"]
    output = str(tmp_path / "predictions.csv")
    one_line_error(lambda: predict_file(run, topic, output), "task setting", "--task", "sentiment, topic")
    one_line_error(lambda: predict_file(run, topic, output, task_name="news"), "news", "sentiment, topic")
    one_line_error(lambda: load(run).predict(["the actor"]), "name the stage with --task")
    code, _, err = run_cli(["predict", run, "--input", topic, "--output", output], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "sentiment, topic" in err, err
    assert not os.path.exists(output)
    assert predict_file(run, topic, output, task_name="topic") == 80
    with open(output, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["label"] for row in rows} <= {"cast", "story"} and set(rows[0]) == {"text", "label", "prob_cast", "prob_story"}
    assert float(rows[0]["prob_cast"]) + float(rows[0]["prob_story"]) == pytest.approx(1.0, abs=1e-5)
    model = load(run).for_task("sentiment")
    assert set(model.predict(["a good film", "a dull plot"])) <= {"pos", "neg"}
    assert model.predict_proba(["a good film"]).shape == (1, 2)
    assert model.predict_proba(["a good film"]).sum() == pytest.approx(1.0)
    one_line_error(lambda: export_run(run, str(tmp_path / "exported"), to="transformers"), "task setting", "--task")


def test_adapters_forget_nothing_by_construction(runs: dict[str, str]) -> None:
    """Each stage's adapter and head are untouched after its stage: R[T, i] == R[i, i] exactly, BWT exactly 0; the
    saved run holds every stage's adapter and head in safetensors (no pickle) and needs the stage to predict."""
    block = metrics_of(runs["adapters"])["continual"]
    matrix = block["matrix"]
    assert matrix[1][0] == matrix[0][0] and block["bwt"] == 0.0, matrix
    assert matrix[0][0] >= 0.7 and matrix[1][1] >= 0.7, matrix  # each stage learnt
    files = os.listdir(os.path.join(runs["adapters"], "model"))
    assert "model.safetensors" in files and not [f for f in files if f.endswith((".bin", ".pt", ".pkl", ".pth"))]
    with open(os.path.join(runs["adapters"], "model", "transferkit.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    assert meta["stages"]["topic"] == {"classes": [2, 3], "labels": ["cast", "story"], "head": "stage_2"}
    assert meta["base_model"] and sorted(meta["heads"]) == ["stage_1", "stage_2"]
    assert set(load(runs["adapters"]).for_task("topic").predict(["the actor", "the plot"])) <= {"cast", "story"}


def test_adapters_train_one_stage_at_a_time(tiny_model: str) -> None:
    """A stage's optimizer holds its own adapter and head only; every adapter and head is part of the saved delta."""
    task = TASKS.get("classification")(labels=["a:0", "a:1", "b:0", "b:1"])
    model = task.build_model(load_backbone(tiny_model))
    for key in ("stage_1", "stage_2"):
        model.add_head(TASKS.get("classification")(labels=["0", "1"]), name=key)
    strategy = Adapters(AdaptersConfig())
    staged = strategy.prepare(model)
    names = {id(p): n for n, p in staged.named_parameters()}
    trained = [names[id(p)] for group in strategy.param_groups(staged.for_task("stage_2"), 1e-3, 1e-3, 0.01)
               for p in group["params"]]
    assert trained and all("stage_2" in name for name in trained), trained
    delta = {n for n, p in staged.named_parameters() if p.requires_grad}
    assert any("lora_A.stage_1" in n for n in delta) and any("heads.stage_1" in n for n in delta)
    assert not any(n.startswith("head.") or "lora" not in n and n.startswith("backbone.") for n in delta)


def test_adapters_needs_the_task_setting(stream, tiny_model: str, tmp_path) -> None:
    for setting in ("class", "auto"):
        output = str(tmp_path / setting)
        settings = task_config("adapters", stream, output, tiny_model, setting=setting)
        one_line_error(lambda settings=settings: train(settings),
                       "strategy 'adapters' trains one adapter per stage", "set continual.setting: task")
        assert not os.path.exists(output) and not os.path.exists(output + ".partial")


def test_adapters_killed_mid_stream_resumes_to_the_same_matrix(stream, tiny_model: str, tmp_path) -> None:
    """Crashes mid-stage 1, mid-stage 2 (stage 1's adapter then comes from the saved stage) and later in stage 2,
    each followed by --resume: the same R as the uninterrupted run, BWT still exactly 0."""
    def run(output: str, resume: bool = False, crash: int | None = None) -> None:
        settings = task_config("adapters", stream, output, tiny_model, epochs=2, checkpoint_every=5, **ADAPTER_STEP)
        train(settings, resume=resume, callbacks=[Crash(crash)] if crash else ())

    run(str(tmp_path / "whole"))
    output = str(tmp_path / "killed")
    for crash in (12, 15, 9):  # 18 steps a stage: step 12 of stage 1; 8 + 7 (stage 2); 5 + 9 (stage 2)
        with contextlib.suppress(RuntimeError):
            run(output, resume=os.path.exists(output + ".partial"), crash=crash)
        assert not os.path.exists(output)
    run(output, resume=True)
    whole, killed = metrics_of(str(tmp_path / "whole"))["continual"], metrics_of(output)["continual"]
    assert killed["matrix"] == whole["matrix"] and killed["bwt"] == 0.0
