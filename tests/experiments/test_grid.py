"""Grids: expansion, validation, a tiny real grid, skipping finished cells, failures and export."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers import run_cli
from transferkit.core.errors import UserError
from transferkit.core.results import ResultsStore
from transferkit.data import read_table, to_examples
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.experiments.grid import expand, load_grid, parse_grid, run_grid

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sst2_data_efficiency.yaml"


def write_spec(path: Path, spec: dict) -> str:
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def tiny_base(tiny_model: str, toy_files: dict[str, str]) -> dict:
    return {"model": tiny_model,
            "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence"},
            "training": {"epochs": 1, "batch_size": 32, "progress": False, "learning_rate": 1e-3,
                         "checkpoint_every": 0}}


def test_expand_crosses_axes_in_order_and_applies_excludes() -> None:
    spec = parse_grid({"base": {"strategy": "tfidf"},
                       "axes": {"strategy": ["tfidf", "finetune"], "data.budget": [8, 32, 0.5],
                                "training.learning_rate": [1e-4, 3e-5]},
                       "exclude": [{"strategy": "tfidf", "training.learning_rate": 3e-5}]})
    cells = expand(spec, "/tmp/grid")
    assert len(cells) == 2 * 3 * 2 - 3
    axes, config = cells[0]
    assert axes == {"strategy": "tfidf", "data.budget": 8, "training.learning_rate": 1e-4}
    assert config.training.learning_rate == pytest.approx(1e-4) and isinstance(config.training.learning_rate, float)
    assert config.data.budget == 8 and config.output.startswith("/tmp/grid/runs/")
    assert len({c.output for _, c in cells}) == len(cells)
    assert not any(a["strategy"] == "tfidf" and a["training.learning_rate"] == 3e-5 for a, _ in cells)


def test_exclude_with_list_values_and_component_options() -> None:
    spec = parse_grid({"base": {"strategy": "finetune"},
                       "axes": {"strategy.freeze_layers": [0, 1, 2], "training.seed": [1, 2]},
                       "exclude": [{"strategy.freeze_layers": [1, 2], "training.seed": 2}]})
    cells = expand(spec)
    assert len(cells) == 4
    assert {c.strategy.options["freeze_layers"] for _, c in cells} == {0, 1, 2}


def test_overrides_set_keys_on_matching_cells_only() -> None:
    spec = parse_grid({"base": {"strategy": "finetune", "training": {"learning_rate": 1e-4}},
                       "axes": {"strategy": ["finetune", {"name": "lora", "r": 4}, "bitfit"], "training.seed": [1, 2]},
                       "overrides": [{"when": {"strategy": ["lora", "bitfit"]}, "set": {"training.learning_rate": 1e-3}},
                                     {"when": {"strategy": "lora", "training.seed": 2}, "set": {"model": "other"}}]})
    cells = {(c.strategy.name, c.training.seed): c for _, c in expand(spec)}
    assert cells[("finetune", 1)].training.learning_rate == pytest.approx(1e-4)
    assert cells[("lora", 1)].training.learning_rate == pytest.approx(1e-3)
    assert cells[("bitfit", 2)].training.learning_rate == pytest.approx(1e-3)
    assert cells[("lora", 2)].model == "other" and cells[("lora", 1)].model == "minilm-l6"
    assert cells[("lora", 1)].strategy.options == {"r": 4}


@pytest.mark.parametrize(("raw", "needles"), [
    ({"axes": {"training.seed": [1]}, "overrides": [{"when": {"strategy": "x"}, "set": {"model": "y"}}]},
     ["overrides rule 1", "'strategy', which is not an axis"]),
    ({"axes": {"training.seed": [1]}, "overrides": [{"when": {"training.seed": 1}, "set": {"training.lr": 1}}]},
     ["overrides rule 1", "unknown axis key 'training.lr'"]),
    ({"axes": {"training.seed": [1]}, "overrides": [{"when": {"training.seed": 1}}]}, ["exactly 'when' and 'set'"]),
    ({"axes": {"training.lerning_rate": [1e-3]}}, ["unknown axis key 'training.lerning_rate'",
                                                   "did you mean 'training.learning_rate'"]),
    ({"axes": {"data.budget": []}}, ["axis 'data.budget' has no values"]),
    ({"axes": {"data.budget": None}}, ["axis 'data.budget' has no values"]),
    ({"axes": {"data.budget": [8]}, "exclude": [{"training.seed": 1}]}, ["'training.seed', which is not an axis"]),
    ({"axes": {"training.seed": [1]}, "base": {"strategy": {"name": "tfidf", "freez": 1}}}, ["freez"]),
    ({"axes": {"strategy.freez_layers": [1]}, "base": {"strategy": "finetune"}}, ["did you mean 'freeze_layers'"]),
])
def test_bad_specs_are_one_line_user_errors(tmp_path, raw, needles) -> None:
    path = write_spec(tmp_path / "grid.yaml", raw)
    with pytest.raises(UserError) as info:
        load_grid(path)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_missing_file_and_invalid_yaml(tmp_path) -> None:
    with pytest.raises(UserError, match="grid spec not found"):
        load_grid(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("base:\n  model: x\naxes: [\n")
    with pytest.raises(UserError, match="line"):
        load_grid(str(bad))


@pytest.mark.shared_data
def test_example_grid_has_48_cells() -> None:
    cwd = os.getcwd()
    os.chdir(EXAMPLE.parents[1])
    try:
        cells = expand(load_grid(str(EXAMPLE)), "runs/sst2-grid")
    finally:
        os.chdir(cwd)
    assert len(cells) == 48
    assert {c.data.split_seed for _, c in cells} == {13}


def _distinct_texts(toy_files: dict[str, str]) -> int:
    texts: set[str] = set()
    for path in toy_files.values():
        texts.update(to_examples(read_table(path), "sentence", "label")[0].texts)
    return len(texts)


def test_tiny_grid_runs_once_and_skips_on_rerun(tiny_model, toy_files, tmp_path) -> None:
    spec = parse_grid({"base": tiny_base(tiny_model, toy_files),
                       "axes": {"strategy": ["tfidf", "feature_extraction", "finetune"], "training.seed": [1, 2]}})
    out = str(tmp_path / "grid")
    cache = EmbeddingCache(str(tmp_path / "cache"))
    summary = run_grid(spec, out, progress=False, cache=cache)
    assert (summary.done, summary.failed, summary.skipped) == (6, 0, 0)
    assert summary.embedded == cache.embedded == _distinct_texts(toy_files)
    cells = ResultsStore(out).cells()
    assert len(cells) == 6 and all(c.status == "done" for c in cells)
    for cell in cells:
        assert os.path.isfile(os.path.join(cell.run_dir, "metrics.json"))
        assert cell.command.startswith("transferkit train --config ") and cell.total_parameters
        assert 0 <= cell.metrics["eval"]["accuracy"] <= 1 and cell.attempts == 1
    assert any(c.history for c in cells if c.axes["strategy"] == "finetune")
    again = run_grid(spec, out, progress=False, cache=cache)
    assert (again.done, again.failed, again.skipped) == (0, 0, 6)
    assert [(c.cell_id, c.attempts, c.finished_at) for c in ResultsStore(out).cells()] == \
        [(c.cell_id, c.attempts, c.finished_at) for c in cells]


def test_failed_cell_is_recorded_and_cli_exits_nonzero(tiny_model, toy_files, tmp_path, capsys,
                                                       monkeypatch) -> None:
    base = tiny_base(tiny_model, toy_files) | {"strategy": "finetune"}
    spec = write_spec(tmp_path / "grid.yaml", {"base": base, "axes": {"strategy.freeze_layers": [0, 99]}})
    out = str(tmp_path / "grid")
    code, stdout, _ = run_cli(["grid", spec, "--output", out], capsys, monkeypatch)
    assert code == 1
    assert "1 done, 1 failed" in stdout
    failed_line = [line for line in stdout.splitlines() if line.startswith("failed ")]
    assert len(failed_line) == 1 and "freeze_layers=99" in failed_line[0] and "UserError" in failed_line[0]
    cells = {c.axes["strategy.freeze_layers"]: c for c in ResultsStore(out).cells()}
    assert cells[0].status == "done" and cells[99].status == "failed"
    assert cells[99].error.startswith("UserError: strategy.freeze_layers=99")


def test_killed_grid_resumes_with_one_row_per_cell(tiny_model, toy_files, tmp_path) -> None:
    spec = parse_grid({"base": tiny_base(tiny_model, toy_files) | {"strategy": "tfidf"},
                       "axes": {"training.seed": [1, 2, 3]}})
    out = str(tmp_path / "grid")
    run_grid(spec, out, progress=False)
    store = ResultsStore(out)
    victim = store.cells()[1]
    store.update(victim.cell_id, status="running", metrics={}, run_dir=None)  # as if killed mid-run
    shutil.rmtree(victim.config["output"])
    os.makedirs(victim.config["output"] + ".partial")
    summary = run_grid(spec, out, progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (1, 2, 0)
    cells = store.cells()
    assert len(cells) == 3 and len({c.cell_id for c in cells}) == 3
    assert all(c.status == "done" for c in cells)
    assert not os.path.exists(victim.config["output"] + ".partial")


def test_results_export_formats(tiny_model, toy_files, tmp_path, capsys, monkeypatch) -> None:
    spec = parse_grid({"base": tiny_base(tiny_model, toy_files) | {"strategy": "tfidf"},
                       "axes": {"data.budget": [10, 20], "training.seed": [1]}})
    out = str(tmp_path / "grid")
    run_grid(spec, out, progress=False)
    code, stdout, _ = run_cli(["results", out, "--format", "csv"], capsys, monkeypatch)
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert code == 0 and len(rows) == 2
    assert {"cell_id", "data.budget", "training.seed", "status", "accuracy", "accuracy_ci_low", "error"} <= set(rows[0])
    assert all(r["status"] == "done" and 0 <= float(r["accuracy"]) <= 1 for r in rows)
    code, stdout, _ = run_cli(["results", out, "--format", "json"], capsys, monkeypatch)
    data = json.loads(stdout)
    assert code == 0 and [r["data.budget"] for r in data] == [10, 20]
    assert data[0]["accuracy_ci_low"] <= data[0]["accuracy"] <= data[0]["accuracy_ci_high"]
    code, stdout, _ = run_cli(["results", out, "--format", "md"], capsys, monkeypatch)
    lines = stdout.strip().splitlines()
    assert code == 0 and len(lines) == 4 and lines[0].startswith("| cell_id |")


def test_results_on_missing_dir_is_one_line_error(tmp_path, capsys, monkeypatch) -> None:
    for directory in (tmp_path / "missing", tmp_path):
        code, _, err = run_cli(["results", str(directory)], capsys, monkeypatch)
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    code, _, err = run_cli(["results", str(tmp_path), "--format", "xml"], capsys, monkeypatch)
    assert code == 2 and "unknown format" in err


def test_parallel_workers_write_one_store(toy_files, tmp_path) -> None:
    spec = parse_grid({"base": {"strategy": "tfidf",
                                "data": {"train": toy_files["train"], "eval": toy_files["eval"],
                                         "text_column": "sentence"}},
                       "axes": {"data.budget": [10, 20]}})
    out = str(tmp_path / "grid")
    summary = run_grid(spec, out, workers=2, progress=False)
    assert (summary.done, summary.failed) == (2, 0)
    assert [c.status for c in ResultsStore(out).cells()] == ["done", "done"]
