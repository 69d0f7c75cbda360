"""Data-parallel training under a launcher: ``accelerate launch -m transferkit train`` with 2 CPU processes (gloo)
ends with the weights of 1 process at the same global batch (within 1e-4).

Why they can match exactly: without length grouping an epoch's order is one seeded permutation, so 1 process's
batch k of size B is the union of batches 2k and 2k + 1 of size B/2, which processes 0 and 1 take; DDP averages their
mean-loss gradients, which is the gradient of the mean over the B examples.  Dropout 0 (backbone and head) so no
random mask differs between the two layouts.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from transferkit.testing import write_toy_csv

GLOBAL_BATCH = 8
STEPS = 16  # 64 examples / 8, 2 epochs


def _gloo_unavailable() -> str | None:
    if not torch.distributed.is_available():
        return "this torch build has no torch.distributed"
    if not torch.distributed.is_gloo_available():
        return "this torch build has no gloo backend"
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    except OSError as exc:
        return f"no TCP sockets for the process group's rendezvous: {exc}"
    return None


pytestmark = pytest.mark.skipif(_gloo_unavailable() is not None, reason=str(_gloo_unavailable()))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def model_without_dropout(tiny_model: str, target: str) -> str:
    """A copy of the tiny BERT with its dropout probabilities set to 0."""
    shutil.copytree(tiny_model, target)
    path = os.path.join(target, "config.json")
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    return target


def train_args(model: str, train: str, evaluation: str, output: str, batch_size: int) -> list[str]:
    return ["train", "--model", model, "--strategy", "finetune", "--train", train, "--eval", evaluation,
            "--text-column", "sentence", "--output", output, "--set", "training.epochs=2",
            "--set", f"training.batch_size={batch_size}", "--set", "training.learning_rate=1e-3",
            "--set", "training.group_by_length=false", "--set", "task.dropout=0", "--set", "training.progress=false"]


def launch(processes: int) -> list[str]:
    """``accelerate launch`` with every setting given (no user config read).  ``--multi_gpu`` is Accelerate's torchrun
    launcher, which starts the processes on a machine without a GPU too; transferkit then forms a gloo group."""
    return [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu",
            "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", "transferkit"]


def run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]


def test_two_processes_end_with_the_weights_of_one_at_the_same_global_batch(tiny_model, tmp_path) -> None:
    model = model_without_dropout(tiny_model, str(tmp_path / "model"))
    train = write_toy_csv(str(tmp_path / "train.csv"), 64, seed=0)
    evaluation = write_toy_csv(str(tmp_path / "eval.csv"), 16, seed=1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"}

    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    run([sys.executable, "-m", "transferkit", *train_args(model, train, evaluation, one, GLOBAL_BATCH)], env)
    run([*launch(2), *train_args(model, train, evaluation, two, GLOBAL_BATCH // 2)], env)

    for output in (one, two):
        with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
            assert json.load(handle)["steps"] == STEPS  # 2 processes: each took half the batches, as many steps
    assert not os.path.exists(two + ".partial")  # the main process renamed the run directory; nobody else wrote one
    reference = load_file(os.path.join(one, "model", "model.safetensors"))
    launched = load_file(os.path.join(two, "model", "model.safetensors"))
    assert reference.keys() == launched.keys()
    worst = max(float((reference[name] - launched[name]).abs().max()) for name in reference)
    assert worst < 1e-4, f"largest weight difference {worst:.2e}"
