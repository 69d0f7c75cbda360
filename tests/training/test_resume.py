"""Kill training mid-epoch (SIGKILL), ``--resume``, and get the predictions of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from transferkit.testing import write_toy_csv


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "transferkit.cli.main", *args]


def train_command(model: str, train: str, evaluation: str, output: str) -> list[str]:
    return cli("train", "--model", model, "--strategy", "finetune", "--train", train, "--eval", evaluation,
               "--text-column", "sentence", "--output", output, "--set", "training.epochs=2",
               "--set", "training.batch_size=8", "--set", "training.checkpoint_every=3",
               "--set", "training.learning_rate=1e-3", "--set", "training.progress=false")


def state_of(output: str) -> dict | None:
    for name in ("checkpoint", "checkpoint.old"):
        path = os.path.join(output + ".partial", name, "trainer_state.json")
        try:
            with open(path) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            continue
    return None


def predictions(run: str, data: str, target: str) -> list[dict]:
    subprocess.run(cli("predict", run, "--input", data, "--output", target), check=True, capture_output=True)
    with open(target) as handle:
        return [json.loads(line) for line in handle]


def test_kill_mid_epoch_then_resume_matches_uninterrupted(tiny_model, tmp_path) -> None:
    train = write_toy_csv(str(tmp_path / "train.csv"), 800, seed=3)
    evaluation = write_toy_csv(str(tmp_path / "eval.csv"), 100, seed=4)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    reference = str(tmp_path / "reference")
    subprocess.run(train_command(tiny_model, train, evaluation, reference), check=True, capture_output=True, env=env)

    killed = str(tmp_path / "killed")
    process = subprocess.Popen(train_command(tiny_model, train, evaluation, killed), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        state = state_of(killed)
        if state and state["epoch"] == 0 and state["batch_in_epoch"] >= 15:
            break  # mid-epoch 1 of 2, a few checkpoints in
        time.sleep(0.02)
    assert process.poll() is None, "training finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not os.path.exists(killed), "a killed run must not look finished"
    at_kill = state_of(killed)
    assert at_kill is not None and 0 < at_kill["batch_in_epoch"] < 100

    resumed = subprocess.run([*train_command(tiny_model, train, evaluation, killed), "--resume"],
                             capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch 0" in resumed.stderr

    expected = predictions(reference, evaluation, str(tmp_path / "a.jsonl"))
    actual = predictions(killed, evaluation, str(tmp_path / "b.jsonl"))
    assert [r["label"] for r in actual] == [r["label"] for r in expected]
    for a, b in zip(actual, expected, strict=True):
        for label, probability in a["probabilities"].items():
            assert probability == pytest.approx(b["probabilities"][label], abs=1e-6)
