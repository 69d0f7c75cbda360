"""Grids and reports for every task: each reports its own metrics (tiny random BERT, toy data)."""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path

import pytest

from tests.helpers import one_line_error, run_cli
from transferkit.experiments.grid import expand, parse_grid, run_grid
from transferkit.experiments.grid_results import result_rows
from transferkit.reporting import render_report
from transferkit.testing import write_toy_conll, write_toy_squad

TASK_DATA = {  # task: (toy data writer, file suffix, report metrics with the primary first)
    "token_classification": (write_toy_conll, "conll", ("f1", "precision", "recall")),
    "question_answering": (write_toy_squad, "json", ("f1", "exact_match")),
}


def task_spec(task: str, tiny_model: str, root: Path) -> dict:
    write, suffix, _ = TASK_DATA[task]
    return {"base": {"model": tiny_model, "task": task,
                     "data": {"train": write(str(root / f"train.{suffix}"), 120, seed=0),
                              "eval": write(str(root / f"eval.{suffix}"), 40, seed=1), "max_length": 48},
                     "training": {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "progress": False,
                                  "checkpoint_every": 0}},
            "axes": {"strategy": ["finetune", "scratch"], "data.budget": [60], "training.seed": [1, 2]}}


@pytest.fixture(scope="module", params=sorted(TASK_DATA))
def task_grid(request, tiny_model, tmp_path_factory) -> tuple[str, Path, str]:
    """(task, grid directory, progress output) of a 2 strategies x 1 budget x 2 seeds grid."""
    task = request.param
    root = tmp_path_factory.mktemp(task)
    capture = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stderr", capture)
        summary = run_grid(parse_grid(task_spec(task, tiny_model, root)), str(root / "grid"))
    assert (summary.done, summary.failed) == (4, 0), [c.error for c in summary.failures]
    return task, root / "grid", capture.getvalue()


def summary_header(text: str, markdown: bool) -> list[str]:
    if markdown:
        table = next(line for line in text.split("## Summary", 1)[1].splitlines() if line.startswith("|"))
        return [c.strip() for c in table.strip("|").split("|")]
    table = text.split("<h2>Summary", 1)[1].split("</thead>", 1)[0]
    return [html.unescape(c) for c in re.findall(r"<th[^>]*>([^<]*)</th>", table)]


def test_progress_lines_and_results_show_the_task_metrics(task_grid) -> None:
    task, directory, progress = task_grid
    metrics = TASK_DATA[task][2]
    assert len(re.findall(rf"… {metrics[0]} \d+\.\d+", progress)) == 4, progress
    columns, rows = result_rows(str(directory))
    assert [c for c in columns if c in (*metrics, "accuracy", "macro_f1", "roc_auc")] == list(metrics)
    assert {"task", f"{metrics[0]}_ci_low", f"{metrics[0]}_ci_high"} <= set(columns)
    assert all(r["task"] == task and r["status"] == "done" and r[metrics[0]] is not None for r in rows)
    assert all(r[f"{metrics[0]}_ci_low"] <= r[metrics[0]] <= r[f"{metrics[0]}_ci_high"] for r in rows)


def test_results_command_exports_the_task_columns(task_grid, capsys, monkeypatch) -> None:
    task, directory, _ = task_grid
    code, stdout, _ = run_cli(["results", str(directory)], capsys, monkeypatch)
    header = next(csv.reader(io.StringIO(stdout)))
    assert code == 0 and set(TASK_DATA[task][2]) <= set(header) and "accuracy" not in header


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_report_defaults_to_the_primary_metric(task_grid, tmp_path, suffix) -> None:
    task, directory, _ = task_grid
    metrics = TASK_DATA[task][2]
    path = tmp_path / f"report{suffix}"
    render_report(str(directory), str(path))
    text = path.read_text(encoding="utf-8")
    header = summary_header(text, markdown=suffix == ".md")
    assert f"{metrics[0]} mean ± std" in header and f"{metrics[0]} 95% CI" in header
    assert all(f"{m} mean ± std" in header for m in metrics[1:])
    assert not any("accuracy" in h for h in header), header
    assert "budget (training " in " ".join(header) and "labels" not in " ".join(header)
    assert "finetune" in text and "scratch" in text and f"compared on {metrics[0]}" in text
    assert "Paired comparisons" in text and "mean diff" in text


def test_report_metric_option_and_unknown_metric(task_grid, tmp_path, capsys, monkeypatch) -> None:
    task, directory, _ = task_grid
    other = TASK_DATA[task][2][-1]
    target = str(tmp_path / "report.html")
    code, out, _ = run_cli(["report", str(directory), "-o", target, "--metric", other], capsys, monkeypatch)
    assert code == 0 and "report written" in out
    assert f"compared on {other}" in Path(target).read_text(encoding="utf-8")
    code, _, err = run_cli(["report", str(directory), "-o", str(tmp_path / "x.html"), "--metric", "accuracy"],
                           capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "unknown metric 'accuracy'" in lines[0]
    assert f"available: {', '.join(TASK_DATA[task][2])}" in lines[0]
    assert not (tmp_path / "x.html").exists()


def test_a_grid_runs_one_task() -> None:
    spec = parse_grid({"base": {"strategy": "finetune"},
                       "axes": {"task": ["classification", "token_classification"]}})
    one_line_error(lambda: expand(spec), "different tasks (classification, token_classification)", "one task")


@pytest.mark.parametrize(("task", "columns"), [
    ("token_classification", "| entity F1 | entity precision | entity recall | entity F1 95% CI |"),
    ("question_answering", "| F1 | exact match | F1 95% CI |"),
    ("summarization", "| ROUGE-L | ROUGE-1 | ROUGE-2 | ROUGE-L 95% CI |"),
])
def test_model_card_reports_the_task_metrics(task, columns) -> None:
    from transferkit.experiments.card import model_card

    config = {"task": {"name": task}, "strategy": {"name": "finetune"}, "model": "tiny",
              "data": {"train": "train", "eval": None, "budget": None, "max_length": 64}}
    primary = columns.split("|")[1].strip()
    metrics = {"eval": {"f1": 61.5, "rougeL": 14.3, "ci95": {"f1": [55.0, 68.0], "rougeL": None}},
               "train_seconds": 1.0, "trainable_parameters": 10, "total_parameters": 10, "peak_rss_mb": 100.0}
    card = model_card(config, metrics, {"train_size": 8, "eval_size": 2, "labels": [], "train_counts": {}})
    assert f"| split {columns}" in card and "accuracy |" not in card, card
    assert ("[55.0000, 68.0000]" in card) == (primary in ("entity F1", "F1"))
