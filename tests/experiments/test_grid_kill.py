"""SIGKILL a running grid at a moment chosen from its own progress, re-run it: one row per cell, all done."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import yaml


def statuses(db_path: str) -> list[str]:
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            return [row[0] for row in db.execute("SELECT status FROM cells")]
    except sqlite3.Error:
        return []


def test_sigkilled_grid_reruns_to_exactly_one_row_per_cell(tiny_model, toy_files, tmp_path) -> None:
    spec = {
        "base": {"model": tiny_model, "data": {"train": toy_files["train"], "eval": toy_files["eval"],
                                               "text_column": "sentence", "max_length": 32},
                 "training": {"epochs": 2, "batch_size": 8, "progress": False, "checkpoint_every": 5}},
        "axes": {"strategy": ["finetune", "scratch"], "training.seed": [1, 2, 3]},
    }
    spec_path = tmp_path / "grid.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    output = tmp_path / "grid"
    command = [sys.executable, "-m", "transferkit.cli.main", "grid", str(spec_path), "--output", str(output)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_path = str(output / "results.sqlite")
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        current = statuses(db_path)
        if current.count("done") >= 2 and "running" in current:
            break  # some cells finished, one in flight
        time.sleep(0.05)
    assert process.poll() is None, "the grid finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    at_kill = statuses(db_path)
    assert "done" in at_kill and at_kill.count("done") < 6 and "running" in at_kill

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT cell_id, status FROM cells").fetchall()
    assert len(rows) == 6 and len({cell for cell, _ in rows}) == 6
    assert {status for _, status in rows} == {"done"}
    run_dirs = sorted(os.listdir(output / "runs"))
    assert len(run_dirs) == 6 and not any(name.endswith(".partial") for name in run_dirs)
