"""render_report end to end on synthetic results: HTML, Markdown, errors, speed, a headless browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.reporting.fake_results import make_results
from transferkit.core.errors import UserError
from transferkit.core.results import Cell, ResultsStore
from transferkit.reporting import render_report, summarize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def html_report(results: tuple[Path, list[Cell]]) -> Path:
    directory, _ = results
    path = directory / "out" / "report.html"
    assert render_report(str(directory), str(path)) == str(path)
    return path


def test_html_is_self_contained(html_report: Path) -> None:
    text = html_report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)
    assert "<link" not in text and "<script" not in text
    assert text.count("data:image/png;base64,") >= 4
    assert html_report.stat().st_size < 5_000_000
    assert not list(html_report.parent.glob(".tmp-*"))  # atomic write left no temp file


def test_html_contains_summary_comparisons_failures_and_reproduce(html_report: Path, results: tuple[Path, list[Cell]]) -> None:
    text = html_report.read_text(encoding="utf-8")
    _, cells = results
    for row in summarize(cells, "accuracy"):
        assert f"{row['mean']:.3f} ± {row['std']:.3f}" in text
        assert f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]" in text
    assert "Paired comparisons" in text and "p (sign-flip)" in text
    for strategy in ("finetune", "lora"):
        for baseline in ("scratch", "tfidf"):
            assert re.search(rf"<td class=l>{strategy}</td><td class=l>{baseline}</td><td>9</td>", text)
    assert "CUDA out of memory &lt;oops&gt;" in text  # failed cell's error, escaped
    assert text.count("<details>") == len(cells)
    assert "transferkit train --strategy lora --budget 32 --seed 2" in text
    assert "budget: 32" in text  # config as YAML


def test_markdown_report_writes_png_files(results: tuple[Path, list[Cell]], tmp_path: Path) -> None:
    directory, cells = results
    path = tmp_path / "report.md"
    render_report(str(directory), str(path))
    text = path.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 4
    for link in links:
        assert link.startswith("report_files/")
        assert (tmp_path / link).read_bytes().startswith(PNG_MAGIC)
    row = summarize(cells, "accuracy")[0]
    assert f"{row['mean']:.3f} ± {row['std']:.3f}" in text
    assert "CUDA out of memory <oops> \\| retry" in text


def _one_line_user_error(directory: Path, output: Path) -> str:
    with pytest.raises(UserError) as info:
        render_report(str(directory), str(output))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_results_is_one_line_user_error(tmp_path: Path) -> None:
    assert "no results" in _one_line_user_error(tmp_path / "nowhere", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_no_done_cells_is_user_error(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path))
    store.add(Cell("abc", {"strategy": "lora"}, {}, status="failed", error="boom"))
    assert "no done cells" in _one_line_user_error(tmp_path, tmp_path / "r.html")


def test_bad_extension_is_user_error(results: tuple[Path, list[Cell]], tmp_path: Path) -> None:
    assert ".html or .md" in _one_line_user_error(results[0], tmp_path / "r.pdf")


def test_48_cells_render_in_under_10_seconds(tmp_path: Path) -> None:
    make_results(str(tmp_path), budgets=(8, 32, 128, 512), failed=False)
    start = time.perf_counter()
    render_report(str(tmp_path), str(tmp_path / "report.html"))
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"render_report took {elapsed:.1f} s for 48 cells"
    assert (tmp_path / "report.html").stat().st_size < 5_000_000


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def test_report_renders_in_headless_chromium(html_report: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed; headless browser check skipped")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    url = html_report.resolve().as_uri()
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,4000", url],
                   capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes().startswith(PNG_MAGIC)
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False).stdout
    images = re.findall(r"<img\b[^>]*>", dom)
    assert len(images) >= 4
    for tag in images:
        match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', tag)
        assert match and len(match.group(1)) > 1000, tag[:200]
        assert base64.b64decode(match.group(1)).startswith(PNG_MAGIC)


def test_report_command_writes_html_and_errors_cleanly(tmp_path, capsys, monkeypatch) -> None:
    from tests.helpers import run_cli
    from transferkit.core.results import Cell, ResultsStore, cell_id
    from transferkit.experiments.grid_results import task_info
    from transferkit.reporting.task_metrics import INFO_KEY

    store = ResultsStore(str(tmp_path / "grid"))
    config = {"model": "m", "strategy": {"name": "tfidf"}}
    metrics = {"eval": {"accuracy": 0.8, "macro_f1": 0.8, "roc_auc": 0.9, "confusion_matrix": [[4, 1], [1, 4]],
                        "per_class": {"neg": {}, "pos": {}}, "ci95": {"accuracy": [0.7, 0.9]}},
               "train_seconds": 1.0, "trainable_parameters": 10, "total_parameters": 10,
               INFO_KEY: task_info("classification").to_dict()}
    store.add(Cell(cell_id(config), {"strategy": "tfidf"}, config, status="done", metrics=metrics,
                   train_seconds=1.0, trainable_parameters=10, total_parameters=10))
    target = str(tmp_path / "report.html")
    code, out, _ = run_cli(["report", str(tmp_path / "grid"), "-o", target], capsys, monkeypatch)
    assert code == 0 and "report written" in out
    with open(target, encoding="utf-8") as handle:
        assert "tfidf" in handle.read()
    code, _, err = run_cli(["report", str(tmp_path / "nothing"), "-o", target], capsys, monkeypatch)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
