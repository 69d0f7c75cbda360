"""Continual strategies on a tiny model and a two-task toy stream: the accuracy matrix R, forgetting and its cures,
and a run killed at random steps that resumes to the same R."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import yaml

from transferkit.core.config import RunConfig
from transferkit.core.contracts import Callback, TrainState
from transferkit.core.errors import UserError
from transferkit.experiments.run import train
from transferkit.testing import write_toy_csv

TOPIC = {"cast": ["actor", "film"], "story": ["plot", "movie"]}
FILLER = ["the", "a", "was", "is"]


def write_topic_csv(path: str, n: int, seed: int) -> str:
    """A second toy task on the tiny model's vocabulary: the label is which pair of cue words the sentence uses."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        for _ in range(n):
            label = rng.choice(sorted(TOPIC))
            words = [rng.choice(FILLER) for _ in range(rng.randint(2, 10))]
            for _ in range(rng.randint(1, 3)):
                words.insert(rng.randint(0, len(words)), rng.choice(TOPIC[label]))
            writer.writerow([" ".join(words), label])
    return path


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    root = tmp_path_factory.mktemp("stream")
    return [{"name": "sentiment", "path": write_toy_csv(str(root / "s_train.csv"), 160, seed=0),
             "test": write_toy_csv(str(root / "s_test.csv"), 80, seed=1)},
            {"name": "topic", "path": write_topic_csv(str(root / "t_train.csv"), 160, seed=2),
             "test": write_topic_csv(str(root / "t_test.csv"), 80, seed=3)}]


def config(strategy: str, stages: list[dict[str, str]], output: str, tiny_model: str, **options: object) -> RunConfig:
    return RunConfig.from_dict({
        "model": tiny_model, "strategy": {"name": strategy, **options}, "output": output,
        "data": {"stream": stages, "text_column": "sentence", "max_length": 32},
        "training": {"epochs": 4, "batch_size": 16, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0}})


@pytest.fixture(scope="module")
def results(stream, tiny_model: str, tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("continual_runs")
    return {name: train(config(name, stream, str(root / name), tiny_model)).metrics
            for name in ("sequential", "replay", "joint", "ewc", "lwf")}


def test_matrix_and_its_summaries(results: dict[str, dict]) -> None:
    block = results["sequential"]["continual"]
    matrix = block["matrix"]
    assert block["names"] == ["sentiment", "topic"] and block["setting"] == "class"
    assert len(matrix) == 2 and all(len(row) == 2 for row in matrix)
    assert matrix[0][1] == 0.0  # class setting: stage 1's model predicts only stage 1's classes
    assert block["acc"] == pytest.approx(sum(matrix[1]) / 2)
    assert block["bwt"] == pytest.approx(matrix[1][0] - matrix[0][0])
    assert block["fwt"] is None
    assert results["sequential"]["test"]["topic"]["accuracy"] == pytest.approx(matrix[1][1], abs=0.02)


def test_sequential_forgets_and_replay_joint_remember(results: dict[str, dict]) -> None:
    """Class-incremental: plain fine-tuning on the topic stage overwrites the sentiment classes; a replayed memory
    keeps them; training on both at once is the upper bound."""
    seq, replay, joint = (results[name]["continual"] for name in ("sequential", "replay", "joint"))
    assert seq["matrix"][0][0] >= 0.8, seq["matrix"]  # it learnt stage 1 ...
    assert seq["bwt"] <= -0.3, seq["matrix"]  # ... and forgot it
    assert replay["acc"] >= seq["acc"] + 0.2, (replay["matrix"], seq["matrix"])
    assert joint["acc"] >= 0.8 and joint["matrix"][0] is None and joint["bwt"] is None, joint
    for name in ("ewc", "lwf"):
        block = results[name]["continual"]
        assert 0 <= block["acc"] <= 1 and len(block["matrix"]) == 2, (name, block)


class Crash(Callback):
    """Raises at the ``at``-th optimiser step of the whole run (counted across stages and resumptions)."""

    def __init__(self, at: int) -> None:
        self.at, self.seen = at, 0

    def on_step_end(self, state: TrainState, model: object, losses: object) -> None:
        self.seen += 1
        if self.seen == self.at:
            raise RuntimeError(f"killed at step {self.at}")


def test_killed_at_random_steps_resumes_to_the_same_matrix(stream, tiny_model: str, tmp_path) -> None:
    """Five crashes at seeded random steps of a four-stage replay stream, each followed by the same command with
    --resume (mid-stage checkpoints every 5 steps): the same R as the uninterrupted run, and no checkpoint or stage
    state left in the finished run."""
    stages = [{**stage, "name": f"{stage['name']}{i}"} for i in range(2) for stage in stream]

    def run(output: str, resume: bool = False, crash: int | None = None) -> None:
        settings = config("replay", stages, output, tiny_model, replay_batch_size=8)
        settings.training = dataclasses.replace(settings.training, epochs=2, checkpoint_every=5)
        train(settings, resume=resume, callbacks=[Crash(crash)] if crash else ())

    run(str(tmp_path / "whole"))
    output = str(tmp_path / "killed")
    for crash in random.Random(7).sample(range(1, 40), 5):
        with contextlib.suppress(RuntimeError):
            run(output, resume=os.path.exists(output + ".partial"), crash=crash)
        if os.path.exists(output):
            break
    else:
        run(output, resume=True)
    whole, killed = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("whole", "killed"))
    assert killed["continual"]["matrix"] == whole["continual"]["matrix"]
    assert not os.path.exists(os.path.join(output, "checkpoints"))


@pytest.mark.slow
def test_sigkill_at_random_moments_resumes_to_the_same_matrix(stream, tiny_model: str, tmp_path) -> None:
    """The same four-stage stream as a real process killed with SIGKILL at five seeded random moments of its training
    (0.2-1.2 s after the log shows this process began the run), each time restarted with the same command and --resume: the same R
    as the uninterrupted in-process run."""
    stages = [{**stage, "name": f"{stage['name']}{i}"} for i in range(2) for stage in stream]
    settings = config("replay", stages, str(tmp_path / "whole"), tiny_model, replay_batch_size=8)
    settings.training = dataclasses.replace(settings.training, epochs=4, checkpoint_every=5)
    whole = train(settings).metrics["continual"]["matrix"]
    output = tmp_path / "killed"
    raw = settings.to_dict()
    raw["output"] = str(output)
    (tmp_path / "killed.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    command = [sys.executable, "-m", "transferkit.cli.main", "train", "--config", str(tmp_path / "killed.yaml")]
    rng, kills = random.Random(11), 0
    while kills < 5 and not output.exists():
        process = subprocess.Popen([*command, *(["--resume"] if kills else [])], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        for line in process.stderr:  # the run's log: wait for "run ...: replay on ..." of this process
            if "replay on" in line:
                break
        time.sleep(rng.uniform(0.2, 1.2))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    if not output.exists():
        assert subprocess.run([*command, "--resume"], capture_output=True, timeout=600).returncode == 0
    assert kills >= 3, kills  # most kills landed while it trained
    assert json.loads((output / "metrics.json").read_text())["continual"]["matrix"] == whole


def test_bad_input(stream, tiny_model: str, tmp_path) -> None:
    with pytest.raises(UserError, match="set data.stream"):
        train(RunConfig.from_dict({"model": tiny_model, "strategy": "replay", "output": str(tmp_path / "a"),
                                   "data": {"train": stream[0]["path"], "text_column": "sentence"}}))
    with pytest.raises(UserError, match="continual strategy"):
        train(config("finetune", stream, str(tmp_path / "b"), tiny_model))
    with pytest.raises(UserError, match="ewc_lambda"):
        train(config("ewc", stream, str(tmp_path / "c"), tiny_model, ewc_lambda=-1))
