"""Results rows, the report and the model card name the split their figures come from (fake cells, no training)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.reporting.fake_results import make_results
from transferkit.core.results import Cell
from transferkit.experiments.card import model_card
from transferkit.experiments.grid_results import result_rows
from transferkit.reporting import render_report, summarize


@pytest.fixture(scope="module")
def two_tests(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Cell]]:
    """Cells with test sets en and zh whose neural runs selected their checkpoint on eval."""
    directory = tmp_path_factory.mktemp("two_tests")
    return directory, make_results(str(directory), budgets=(8, 32), seeds=(1, 2), tests=("en", "zh"), selected=True)


def _section(text: str, heading: str) -> str:
    """The Markdown text under ``## heading...`` up to the next ``## ``."""
    return text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def _row(section: str, *first: str) -> list[str]:
    """The cells of the Markdown table row whose first columns are ``first``."""
    for line in section.splitlines():
        values = [v.strip() for v in line.strip("|").split("|")]
        if line.startswith("|") and values[:len(first)] == list(first):
            return values
    raise AssertionError(f"no row {first} in {section}")


def test_result_rows_come_from_the_first_test_set(two_tests) -> None:
    directory, cells = two_tests
    columns, rows = result_rows(str(directory))
    assert columns.index("split") < columns.index("accuracy") < columns.index("accuracy[test:zh]") \
        < columns.index("accuracy[eval]")
    by_id = {c.cell_id: c for c in cells}
    for row in rows:
        metrics = by_id[row["cell_id"]].metrics
        if row["status"] != "done":
            assert row["split"] is None and row["accuracy"] is None
            continue
        assert row["split"] == "test:en"
        assert row["accuracy"] == metrics["test"]["en"]["accuracy"] != metrics["eval"]["accuracy"]
        assert [row["accuracy_ci_low"], row["accuracy_ci_high"]] == metrics["test"]["en"]["ci95"]["accuracy"]
        assert row["accuracy[test:zh]"] == metrics["test"]["zh"]["accuracy"]
        assert row["accuracy[eval]"] == metrics["eval"]["accuracy"]
        assert row["selected_on"] == (None if row["strategy"] == "tfidf" else "eval")


def test_result_rows_label_the_selection_split(tmp_path) -> None:
    make_results(str(tmp_path), budgets=(8,), seeds=(1,), failed=False, selected=True)
    columns, rows = result_rows(str(tmp_path))
    assert not any("[" in c for c in columns)
    assert {r["strategy"]: r["split"] for r in rows} == {"finetune": "eval (selection split)", "lora": "eval (selection split)",
                                                         "scratch": "eval (selection split)", "tfidf": "eval"}


def test_results_command_shows_the_split_columns(two_tests, capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["results", str(two_tests[0]), "--format", "md"], capsys, monkeypatch)
    header = [c.strip() for c in out.splitlines()[0].strip("|").split("|")]
    assert code == 0 and {"split", "accuracy", "accuracy[test:zh]", "accuracy[eval]"} <= set(header)
    assert "| test:en |" in out


def test_report_compares_on_the_test_set_and_shows_every_split(two_tests, tmp_path) -> None:
    directory, cells = two_tests
    path = tmp_path / "report.md"
    render_report(str(directory), str(path))
    text = path.read_text(encoding="utf-8")
    assert "figures on test:en" in text and "held out" in _section(text, "Summary on test:en")
    summary = _section(text, "Summary on test:en")
    for row in summarize(cells, "accuracy", split="test:en"):
        values = _row(summary, row["strategy"], str(row["data.budget"]))
        assert values[3] == f"{row['mean']:.3f} ± {row['std']:.3f}"
    on_eval = summarize(cells, "accuracy", split="eval")[0]
    assert _row(summary, on_eval["strategy"], str(on_eval["data.budget"]))[3] != \
        f"{on_eval['mean']:.3f} ± {on_eval['std']:.3f}"
    splits = _section(text, "accuracy per split")
    header = [c.strip() for c in next(line for line in splits.splitlines() if line.startswith("|")).strip("|").split("|")]
    assert header[-4:] == ["accuracy on test:en", "accuracy on test:zh", "accuracy on eval (selection split)",
                           "gap (test:en − test:zh)"]
    zh = summarize(cells, "accuracy", split="test:zh")[0]
    en = next(r for r in summarize(cells, "accuracy", split="test:en")
              if (r["strategy"], r["data.budget"]) == (zh["strategy"], zh["data.budget"]))
    row = _row(splits, zh["strategy"], str(zh["data.budget"]))
    assert row[3] == f"{zh['mean']:.3f} ± {zh['std']:.3f}" and row[-1] == f"{en['mean'] - zh['mean']:.3f}"
    assert "## Paired comparisons on test:en" in text
    assert "## Learning curves: per-epoch eval (selection split)" in text


def test_report_split_option_and_unknown_split(two_tests, tmp_path, capsys, monkeypatch) -> None:
    directory, cells = two_tests
    target = tmp_path / "zh.md"
    code, out, _ = run_cli(["report", str(directory), "-o", str(target), "--split", "zh"], capsys, monkeypatch)
    text = target.read_text(encoding="utf-8")
    assert code == 0 and "## Summary on test:zh" in text
    row = summarize(cells, "accuracy", split="test:zh")[-1]
    assert _row(_section(text, "Summary on test:zh"), row["strategy"], str(row["data.budget"]))[3] == \
        f"{row['mean']:.3f} ± {row['std']:.3f}"
    code, _, err = run_cli(["report", str(directory), "-o", str(tmp_path / "x.html"), "--split", "fr"], capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "unknown split 'fr'" in lines[0]
    assert "available: test:en, test:zh, eval" in lines[0] and not (tmp_path / "x.html").exists()


def test_report_without_test_sets_labels_the_selection_split(tmp_path) -> None:
    make_results(str(tmp_path), budgets=(8, 32), seeds=(1, 2), selected=True)
    render_report(str(tmp_path), str(tmp_path / "report.html"))
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert re.search(r"<h2>Summary on eval \(selection split\)</h2>\s*<table><caption>[^<]*optimistic[^<]*</caption>",
                     text)
    assert "per split" not in text and "Paired comparisons on eval (selection split)" in text


CARD_CONFIG = {"task": {"name": "classification"}, "strategy": {"name": "finetune"}, "model": "tiny",
               "data": {"train": "train.csv", "eval": "dev.csv", "budget": None, "max_length": 64}}
SUMMARY = {"train_size": 8, "eval_size": 2, "labels": ["neg", "pos"], "train_counts": {}}
COSTS = {"train_seconds": 1.0, "trainable_parameters": 10, "total_parameters": 10, "peak_rss_mb": 100.0}


def _split(accuracy: float) -> dict:
    return {"accuracy": accuracy, "macro_f1": accuracy, "roc_auc": accuracy,
            "ci95": {"accuracy": [accuracy - 0.1, accuracy + 0.1]}}


@pytest.mark.parametrize(("test", "stored", "rows"), [
    (None, None, [("eval (selection split)", 0.9)]),
    ("t.csv", {"test": _split(0.8)}, [("eval (selection split)", 0.9), ("test", 0.8)]),
    ({"en": "en.csv", "zh": "zh.csv"}, {"en": _split(0.8), "zh": _split(0.7)},
     [("eval (selection split)", 0.9), ("test:en", 0.8), ("test:zh", 0.7)]),
])
def test_model_card_has_a_row_per_split(test, stored, rows) -> None:
    config = {**CARD_CONFIG, "data": {**CARD_CONFIG["data"], "test": test}}
    metrics = {"eval": _split(0.9), "selected_on": "eval", **COSTS} | ({"test": stored} if stored else {})
    card = model_card(config, metrics, SUMMARY)
    table = [line for line in card.splitlines() if line.startswith("| ") and not line.startswith("| split")]
    assert len(table) == len(rows)
    for line, (label, accuracy) in zip(table, rows, strict=True):
        assert line.startswith(f"| {label} | {accuracy:.4f} |"), line
        assert line.endswith(f"| [{accuracy - 0.1:.4f}, {accuracy + 0.1:.4f}] |"), line
    if isinstance(test, dict):
        assert "- test `en`: `en.csv`" in card and "- test `zh`: `zh.csv`" in card
        assert "Measured on the test data" in card
    elif test:
        assert "- test: `t.csv`" in card
    else:
        assert "- test" not in card and "optimistic" in card
