"""Grids as Ray tasks on a local Ray: the same rows as one local process, resume, failures, bad addresses.

One local Ray (2 CPUs) is started for the module and reused by every grid here (``run_grid`` uses a Ray this
process already started and leaves it running); tfidf cells keep each task to a fraction of a second.
"""

from __future__ import annotations

import logging
import os
import sys

import pytest
import yaml

from tests.helpers import run_cli
from transferkit.core.results import ResultsStore
from transferkit.experiments.grid import parse_grid, run_grid
from transferkit.experiments.grid_ray import RayConfig
from transferkit.experiments.grid_results import COST_COLUMNS, result_rows

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module, as a notebook user would start it."""
    if ray.is_initialized():
        pytest.skip("a Ray from elsewhere is running in this process")
    before = {k: v for k, v in os.environ.items() if k.startswith("RAY_")}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=128 * 2**20, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()
    for key in [k for k in os.environ if k.startswith("RAY_")]:  # Ray sets RAY_AUTH_MODE for its children
        os.environ.pop(key)
    os.environ.update(before)


def tfidf_base(toy_files: dict[str, str]) -> dict:
    return {"strategy": "tfidf", "data": {"train": toy_files["train"], "eval": toy_files["eval"],
                                          "text_column": "sentence"}}


def comparable(rows: list[dict]) -> list[dict]:
    """Result rows without what differs between two runs of the same cells (timings and memory)."""
    return [{k: v for k, v in row.items() if k not in COST_COLUMNS} for row in rows]


def test_ray_grid_gives_the_local_rows_and_resumes(local_ray, toy_files, tmp_path) -> None:
    spec = parse_grid({"base": tfidf_base(toy_files), "axes": {"data.budget": [10, 20], "training.seed": [1, 2]}})
    local_out, ray_out = str(tmp_path / "local"), str(tmp_path / "ray")
    run_grid(spec, local_out, workers=1, progress=False)
    summary = run_grid(spec, ray_out, progress=False, ray=RayConfig())
    assert (summary.done, summary.failed, summary.skipped) == (4, 0, 0)
    _, local_rows = result_rows(local_out)
    _, ray_rows = result_rows(ray_out)
    assert comparable(ray_rows) == comparable(local_rows)
    assert all(row["status"] == "done" and row["accuracy"] is not None for row in ray_rows)
    cells = ResultsStore(ray_out).cells()
    assert all(c.attempts == 1 and c.run_dir.startswith(ray_out) and c.command for c in cells)

    again = run_grid(spec, ray_out, progress=False, ray=RayConfig())
    assert (again.done, again.failed, again.skipped) == (0, 0, 4)
    assert [(c.cell_id, c.attempts, c.finished_at) for c in ResultsStore(ray_out).cells()] == \
        [(c.cell_id, c.attempts, c.finished_at) for c in cells]


def test_failing_cell_is_recorded_through_the_cli(local_ray, toy_files, tmp_path, capsys, monkeypatch) -> None:
    spec = tmp_path / "grid.yaml"
    spec.write_text(yaml.safe_dump({"base": tfidf_base(toy_files), "axes": {"data.text_column": ["sentence", "nope"]}}))
    out = str(tmp_path / "grid")
    code, stdout, err = run_cli(["grid", str(spec), "--output", out, "--executor", "ray", "--workers", "2"],
                                capsys, monkeypatch)
    assert code == 1, err
    assert "1 done, 1 failed" in stdout and "running 2 cell(s) on the running Ray" in err
    failed = [line for line in stdout.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1 and "text_column=nope" in failed[0] and "UserError" in failed[0]
    cells = {c.axes["data.text_column"]: c for c in ResultsStore(out).cells()}
    assert cells["sentence"].status == "done" and cells["nope"].status == "failed"
    assert cells["nope"].error.startswith("UserError: ") and "\n" not in cells["nope"].error


def test_unreachable_address_is_one_line_error(toy_files, tmp_path, capsys, monkeypatch) -> None:
    spec = tmp_path / "grid.yaml"
    spec.write_text(yaml.safe_dump({"base": tfidf_base(toy_files), "axes": {"training.seed": [1]}}))
    code, _, err = run_cli(["grid", str(spec), "-o", str(tmp_path / "out"), "--executor", "ray",
                            "--address", "ray://127.0.0.1:1"], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: grid: cannot reach the Ray cluster at ray://127.0.0.1:1: ")


@pytest.mark.parametrize(("args", "needle"), [
    (["--executor", "rey"], "did you mean 'ray'"),
    (["--address", "ray://127.0.0.1:1"], "--address goes with --executor ray"),
    (["--executor", "ray", "--workers", "0"], "--workers must be >= 1"),
])
def test_bad_executor_flags(args, needle, toy_files, tmp_path, capsys, monkeypatch) -> None:
    spec = tmp_path / "grid.yaml"
    spec.write_text(yaml.safe_dump({"base": tfidf_base(toy_files), "axes": {"training.seed": [1]}}))
    code, _, err = run_cli(["grid", str(spec), "-o", str(tmp_path / "out"), *args], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_missing_ray_names_the_extra(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, _, err = run_cli(["grid", str(tmp_path / "grid.yaml"), "-o", str(tmp_path / "out"), "--executor", "ray"],
                           capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pip install 'transferkit[ray]'" in err, err
