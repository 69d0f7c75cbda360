"""End to end: a grid whose cells have ``data.test`` reports test-set figures, not the selection split's.

The test file carries the toy sentences with their labels flipped, so a run's test accuracy is
far from its eval accuracy and a figure read from the wrong split shows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.experiments.test_grid import tiny_base
from tests.helpers import run_cli
from transferkit.core.results import ResultsStore
from transferkit.experiments.grid import parse_grid, run_grid
from transferkit.experiments.grid_results import result_rows
from transferkit.reporting import render_report
from transferkit.testing import toy_sentences

FLIP = {"pos": "neg", "neg": "pos"}


def write_flipped_test(path: Path) -> str:
    """Toy sentences (a seed neither train nor eval uses) with every label flipped."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        writer.writerows((text, FLIP[label]) for text, label in toy_sentences(60, seed=7))
    return str(path)


@pytest.fixture(scope="module")
def grid_with_test(tiny_model, toy_files, tmp_path_factory) -> tuple[str, dict[str, dict], str]:
    """(grid directory, strategy -> the run's metrics.json, progress output) of a grid with data.test."""
    root = tmp_path_factory.mktemp("test_split_grid")
    base = tiny_base(tiny_model, toy_files)
    base["data"]["test"] = write_flipped_test(root / "test.csv")
    out = str(root / "grid")
    with pytest.MonkeyPatch.context() as patch:
        progress = root / "progress.txt"
        with open(progress, "w", encoding="utf-8") as stream:
            patch.setattr("sys.stderr", stream)
            summary = run_grid(parse_grid({"base": base, "axes": {"strategy": ["tfidf", "finetune"]}}), out)
    assert (summary.done, summary.failed) == (2, 0), [c.error for c in summary.failures]
    stored = {}
    for cell in ResultsStore(out).cells():
        with open(Path(cell.run_dir) / "metrics.json", encoding="utf-8") as handle:
            stored[cell.axes["strategy"]] = json.load(handle)
    return out, stored, progress.read_text(encoding="utf-8")


def test_results_rows_are_the_test_metric(grid_with_test) -> None:
    out, stored, progress = grid_with_test
    _, rows = result_rows(out)
    for row in rows:
        metrics = stored[row["strategy"]]
        on_test, on_eval = metrics["test"]["test"]["accuracy"], metrics["eval"]["accuracy"]
        assert abs(on_test - on_eval) > 0.05  # flipped labels: the two splits disagree
        assert row["split"] == "test" and row["accuracy"] == on_test
        assert row["accuracy[eval]"] == on_eval
        assert f"accuracy {on_test:.3f} on test" in progress


def test_report_number_is_the_test_metric(grid_with_test, tmp_path) -> None:
    out, stored, _ = grid_with_test
    path = tmp_path / "report.md"
    render_report(out, str(path))
    summary = path.read_text(encoding="utf-8").split("## Summary on test", 1)[1].split("\n## ", 1)[0]
    for strategy, metrics in stored.items():
        row = next(line for line in summary.splitlines() if line.startswith(f"| {strategy} |"))
        values = [v.strip() for v in row.strip("|").split("|")]
        assert values[2] == f"{metrics['test']['test']['accuracy']:.3f} ± 0.000", (values, metrics)
        assert values[2] != f"{metrics['eval']['accuracy']:.3f} ± 0.000"


def test_card_has_eval_and_test_rows(grid_with_test) -> None:
    out, stored, _ = grid_with_test
    for cell in ResultsStore(out).cells():
        card = (Path(cell.run_dir) / "card.md").read_text(encoding="utf-8")
        metrics = stored[cell.axes["strategy"]]
        eval_label = "eval (selection split)" if metrics["selected_on"] == "eval" else "eval"
        assert f"| {eval_label} | {metrics['eval']['accuracy']:.4f} |" in card
        assert f"| test | {metrics['test']['test']['accuracy']:.4f} |" in card
        assert "- test: `" in card


def test_train_command_prints_the_test_figures(toy_files, tmp_path, capsys, monkeypatch) -> None:
    test_file = write_flipped_test(tmp_path / "test.csv")
    code, out, err = run_cli(["train", "--strategy", "tfidf", "--train", toy_files["train"], "--eval", toy_files["eval"],
                              "--test", test_file, "--text-column", "sentence", "--output", str(tmp_path / "run")],
                             capsys, monkeypatch)
    assert code == 0, err
    printed = json.loads(out.strip().splitlines()[-1])
    with open(tmp_path / "run" / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    assert list(printed["eval"]) == ["accuracy", "macro_f1", "roc_auc"]
    assert printed["test"] == {"test": {k: metrics["test"]["test"][k] for k in ("accuracy", "macro_f1", "roc_auc")}}
    assert printed["eval"]["accuracy"] == metrics["eval"]["accuracy"]
    assert printed["selected_on"] is None  # tfidf selects no checkpoint
