"""``transferkit tune`` across processes: two processes finish one study between them (exactly ``--trials``), and a
process SIGKILLed mid-trial leaves a study that a re-run completes, the dead trial retried with its parameters."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.slow  # real processes

WORKER = """
import sys, time
from transferkit.experiments import run
from transferkit.experiments.tune import tune

spec, output, trials, delay, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
train = run.train


def slow_train(*args, **kwargs):  # tfidf trials take milliseconds: long enough to overlap, or to be killed in
    time.sleep(delay)
    return train(*args, **kwargs)


run.train = slow_train
tune(spec, output, trials=trials, seed=seed, heartbeat=1)
"""


def write_spec(tmp_path: Path, toy_files: dict[str, str]) -> str:
    spec = {"base": {"strategy": "tfidf", "data": {"train": toy_files["train"], "eval": toy_files["eval"],
                                                    "text_column": "sentence"}},
            "metric": "accuracy", "search": {"strategy.C": {"log_uniform": [0.001, 100]}}}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def worker(spec: str, output: Path, trials: int, delay: float, seed: int) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-c", WORKER, spec, str(output), str(trials), str(delay), str(seed)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def study_trials(output: Path) -> list:
    return optuna.load_study(study_name="toy", storage=f"sqlite:///{output}/study.db").get_trials()


def rows(output: Path) -> dict[str, str]:
    try:
        with sqlite3.connect(output / "results.sqlite", timeout=5) as db:
            return dict(db.execute("SELECT cell_id, status FROM cells").fetchall())
    except sqlite3.Error:
        return {}


def test_two_processes_share_one_study_and_stop_at_its_total(toy_files, tmp_path: Path) -> None:
    spec, output = write_spec(tmp_path, toy_files), tmp_path / "study"
    processes = [worker(spec, output, 4, 1.5, seed) for seed in (0, 1)]
    errors = [process.communicate(timeout=300)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], errors
    trials = study_trials(output)
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 4
    assert sorted(rows(output).values()) == ["done"] * 4
    assert len([name for name in os.listdir(output) if name.startswith("trial-")]) == 4
    ran = [{line.split("]")[0] for line in err.splitlines() if line.startswith("[trial-")} for err in errors]
    assert all(ran) and not ran[0] & ran[1], ran  # both processes ran trials, none twice


def test_a_killed_process_trial_is_retried_with_its_parameters(toy_files, tmp_path: Path) -> None:
    spec, output = write_spec(tmp_path, toy_files), tmp_path / "study"
    process = worker(spec, output, 3, 600.0, 0)  # its first trial never ends on its own
    deadline = time.time() + 120
    while time.time() < deadline and rows(output).get("trial-0000") != "running":
        time.sleep(0.1)
    assert rows(output).get("trial-0000") == "running", process.stderr.read() if process.poll() is not None else ""
    time.sleep(1.5)  # a heartbeat or two
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    time.sleep(2.5)  # past the grace period (2 x --heartbeat): the trial is stale now

    command = [sys.executable, "-m", "transferkit.cli.main", "tune", spec, "--output", str(output), "--trials", "3",
               "--heartbeat", "1"]
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    assert rerun.returncode == 0, rerun.stderr
    trials = {t.number: t for t in study_trials(output)}
    assert trials[0].state == optuna.trial.TrialState.FAIL
    retry = next(t for t in trials.values() if t.system_attrs.get("failed_trial") == 0)
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.params == trials[0].params
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials.values()) == 3
    stored = rows(output)
    assert stored.pop("trial-0000") == "failed" and sorted(stored.values()) == ["done"] * 3
    assert "best: trial-" in rerun.stdout
