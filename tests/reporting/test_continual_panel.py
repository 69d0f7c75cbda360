"""The continual-learning panel: results columns, the report's table and figures, and the model card (fake cells)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.reporting.fake_results import make_cells, make_results
from transferkit.core.results import Cell, ResultsStore
from transferkit.evaluation.continual import continual_summary
from transferkit.experiments.card import model_card
from transferkit.experiments.grid_results import result_rows
from transferkit.reporting import plots, render_report
from transferkit.reporting.continual_panel import _draw_curves, _draw_matrix, continual_panel, matrix_rows

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["books", "dvd", "kitchen"]
SEQUENTIAL = continual_summary(NAMES, [[0.80, 0.10, 0.20], [0.60, 0.90, 0.30], [0.50, 0.70, 0.85]],
                               [0.10, 0.20, 0.25], "domain")  # ACC 0.6833, BWT -0.25, FWT -0.025
JOINT = continual_summary(NAMES, [None, None, [0.90, 0.80, 0.70]], [0.10, 0.20, 0.25], "domain")  # ACC 0.8


def _continual_cells() -> list[Cell]:
    """Eight ordinary done cells; finetune seed 1 and lora seed 1 also store a continual block."""
    cells = make_cells(budgets=(8,), seeds=(1, 2), failed=False)
    for cell in cells:
        if cell.axes["training.seed"] == 1 and cell.axes["strategy"] in ("finetune", "lora"):
            cell.metrics["continual"] = SEQUENTIAL if cell.axes["strategy"] == "finetune" else JOINT
    return cells


@pytest.fixture(scope="module")
def continual_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("continual")
    store = ResultsStore(str(directory))
    for cell in _continual_cells():
        store.add(cell)
    return directory


def test_result_rows_have_the_continual_columns(continual_dir: Path) -> None:
    columns, rows = result_rows(str(continual_dir))
    assert columns.index("roc_auc") < columns.index("continual_acc") < columns.index("continual_bwt") \
        < columns.index("continual_fwt") < columns.index("train_seconds")
    by_run = {(r["strategy"], r["training.seed"]): r for r in rows}
    finetune, lora, other = by_run["finetune", 1], by_run["lora", 1], by_run["scratch", 1]
    assert finetune["continual_acc"] == pytest.approx(2.05 / 3) and finetune["continual_bwt"] == pytest.approx(-0.25)
    assert finetune["continual_fwt"] == pytest.approx(-0.025)
    assert lora["continual_acc"] == pytest.approx(0.8) and lora["continual_bwt"] is None and lora["continual_fwt"] is None
    assert other["continual_acc"] is None


def test_html_report_shows_the_table_heat_maps_and_curves(continual_dir: Path) -> None:
    path = continual_dir / "report.html"
    render_report(str(continual_dir), str(path))
    text = path.read_text(encoding="utf-8")
    section = text.split("<h2>Continual learning</h2>", 1)[1]
    assert "Lopez-Paz" in section.split("</caption>", 1)[0]
    assert "<th>continual_acc</th><th>continual_bwt</th><th>continual_fwt</th>" in section
    assert "<td>0.683</td><td>-0.250</td><td>-0.025</td>" in section
    assert "<td>0.800</td><td>—</td><td>—</td>" in section
    figures = re.findall(r'<h2>Continual learning: ([^<]+)</h2><img alt="[^"]+" src="data:image/png;base64,', text)
    assert figures == ["strategy=finetune, budget=8, seed=1", "strategy=lora, budget=8, seed=1"]
    assert "left out" not in section


def test_markdown_report_links_the_continual_figures(continual_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    render_report(str(continual_dir), str(path))
    text = path.read_text(encoding="utf-8")
    section = text.split("## Continual learning\n", 1)[1].split("\n## ", 1)[0]
    assert "| strategy | budget | seed | setting | stages | continual_acc | continual_bwt | continual_fwt |" in section
    assert "| finetune | 8 | 1 | domain | 3 | 0.683 | -0.250 | -0.025 |" in section
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", section)
    assert links == ["report_files/continual_1.png", "report_files/continual_2.png"]
    for link in links:
        assert (tmp_path / link).read_bytes().startswith(PNG_MAGIC)
    assert len(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)) == 4 + 2  # the usual four plots are still there


def test_figures_are_capped_and_the_rest_counted() -> None:
    panel = continual_panel(_continual_cells(), limit=1)
    assert panel is not None and len(panel.rows) == 2 and len(panel.figures) == 1
    assert panel.note == "Figures for the first 1 of 2 continual runs; 1 left out."


def test_heat_map_writes_each_value_and_the_curves_draw_one_line_per_test_set() -> None:
    fig = plots._figure(8, 4)
    matrix_ax, curves_ax = fig.subplots(1, 2)
    _draw_matrix(fig, matrix_ax, JOINT)
    _draw_curves(curves_ax, SEQUENTIAL)
    assert [t.get_text() for t in matrix_ax.texts] == ["0.90", "0.80", "0.70"]  # the None rows stay blank
    assert [t.get_text() for t in matrix_ax.get_yticklabels()] == NAMES and matrix_ax.get_ylabel() == "after stage"
    assert [line.get_label() for line in curves_ax.lines] == NAMES
    books = curves_ax.lines[0]
    assert list(books.get_xdata()) == [0, 1, 2, 3] and list(books.get_ydata()) == [0.10, 0.80, 0.60, 0.50]


def test_a_store_without_continual_blocks_reports_as_before(tmp_path: Path) -> None:
    make_results(str(tmp_path), budgets=(8,), seeds=(1, 2), failed=False)
    assert continual_panel(ResultsStore(str(tmp_path), create=False).cells()) is None
    columns, _ = result_rows(str(tmp_path))
    assert not any(c.startswith("continual") for c in columns)
    render_report(str(tmp_path), str(tmp_path / "report.md"))
    render_report(str(tmp_path), str(tmp_path / "report.html"))
    for name in ("report.md", "report.html"):
        assert "Continual learning" not in (tmp_path / name).read_text(encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "report_files").iterdir()) == [
        "confusion_matrix.png", "cost_quality.png", "data_efficiency.png", "learning_curves.png"]


CARD_CONFIG = {"task": {"name": "classification"}, "strategy": {"name": "ewc"}, "model": "tiny",
               "data": {"train": "train.csv", "eval": "dev.csv", "budget": None, "max_length": 64}}
SUMMARY = {"train_size": 8, "eval_size": 2, "labels": ["neg", "pos"], "train_counts": {}}
METRICS = {"eval": {"accuracy": 0.5, "macro_f1": 0.5, "roc_auc": 0.5}, "train_seconds": 1.0,
           "trainable_parameters": 10, "total_parameters": 10, "peak_rss_mb": 100.0}


def test_model_card_has_a_continual_section() -> None:
    card = model_card(CARD_CONFIG, {**METRICS, "continual": SEQUENTIAL}, SUMMARY)
    section = card.split("## Continual learning\n", 1)[1].split("\n## ", 1)[0]
    assert "- setting: domain, 3 stages in order: books, dvd, kitchen" in section
    assert "ACC 68.3%, BWT -25.0%, FWT -2.5%" in section
    assert "|  | books | dvd | kitchen |" in section
    assert "| after books | 80.0 | 10.0 | 20.0 |" in section and "| after kitchen | 50.0 | 70.0 | 85.0 |" in section
    joint = model_card(CARD_CONFIG, {**METRICS, "continual": JOINT}, SUMMARY)
    assert "ACC 80.0%, BWT n/a, FWT n/a" in joint
    assert "| after books |  |  |  |" in joint and "| after kitchen | 90.0 | 80.0 | 70.0 |" in joint
    assert "Continual" not in model_card(CARD_CONFIG, METRICS, SUMMARY)


def test_class_setting_card_says_fwt_is_undefined() -> None:
    block = continual_summary(NAMES, SEQUENTIAL["matrix"], None, "class")
    assert matrix_rows(block)[0] == ["", *NAMES]
    assert "ACC 68.3%, BWT -25.0%, FWT n/a" in model_card(CARD_CONFIG, {**METRICS, "continual": block}, SUMMARY)
