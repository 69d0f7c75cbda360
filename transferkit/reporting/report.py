"""The experiment report: statistics, comparisons, plots and a reproduce section, as HTML or Markdown.

``render_report(results_dir, "report.html")`` writes one self-contained file (inline CSS,
PNG plots as base64 data URIs, no external resources); ``"report.md"`` writes Markdown
with the plots as PNG files in ``<stem>_files/`` beside it.  Files are written atomically.
The summary shows every report metric of the results' task; comparisons and plots use one
of them (``metric``, by default the task's primary: accuracy, entity F1, QA F1, ROUGE-L).
Figures come from one split (``split``, by default the first test set when the runs have one,
else eval), named in the meta line and in each table's caption; an eval split that
best-checkpoint restore selected on is labelled "eval (selection split)".  When the runs have
test sets, a table puts ``metric`` on every split side by side, with the gap between the first
test set and each other one (cross-lingual transfer: list the source language's test set first).
Continual runs (a ``continual`` block in their metrics) add a section: ACC, BWT and FWT per run,
and for up to 12 runs a heat map of the accuracy matrix beside the per-stage accuracy curves
(see :mod:`~transferkit.reporting.continual_panel`); without such runs the report is unchanged.
A search written by ``transferkit tune`` adds its optimisation history and parameter importances
(see :mod:`~transferkit.reporting.tuning`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from transferkit.core.atomic import write_bytes_atomic
from transferkit.core.errors import UserError
from transferkit.core.results import Cell, ResultsStore
from transferkit.reporting import plots
from transferkit.reporting.continual_panel import CAPTION as CONTINUAL_CAPTION
from transferkit.reporting.continual_panel import ContinualPanel, continual_panel
from transferkit.reporting.report_split import (
    EVAL,
    available_splits,
    choose_split,
    grid_split_label,
    split_description,
)
from transferkit.reporting.stats import group_axes, metric_value, paired_comparison, sort_key, summarize
from transferkit.reporting.task_metrics import TaskInfo, choose_metric, metric_digits, read_task
from transferkit.reporting.tuning import tuning_figures

__all__ = ["BASELINES", "render_report"]

BASELINES = ("scratch", "tfidf")
"""Strategies every other (transfer) strategy is compared against, when present; so is any
strategy run with ``init=random`` (e.g. ``word_vectors(init=random)``)."""


def is_baseline(strategy: str) -> bool:
    """A no-transfer strategy label: a baseline by name or a random-init variant."""
    return strategy in BASELINES or "init=random" in strategy

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1200px;
color:#222;padding:0 1rem}h1{margin-bottom:.2rem}.meta{color:#666;margin-top:0}table{border-collapse:collapse;
margin:.8rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}img{max-width:100%;height:auto;border:1px solid #eee;margin:.5rem 0}details{margin:.3rem 0}
pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.8rem}code{font-size:.85rem}.err{color:#a00}
summary{cursor:pointer}caption{caption-side:top;text-align:left;color:#555;font-size:.85rem;padding:.2rem 0}"""

SPLITS_CAPTION = ("Mean ± std over seeds on every stored split: test sets are held out and evaluated once; "
                  "on a split marked (selection split), best-checkpoint restore chose the checkpoint of the runs "
                  "that keep their best epoch, so their figures there are optimistic.")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _fmt_params(value: float | None) -> str:
    return "—" if value is None else f"{round(value):,}"


def _fmt_p(p: float | None) -> str:
    return "—" if p is None else (f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}")


def _digits(cells: Sequence[Cell], metric: str, split: str) -> int:
    return metric_digits(metric_value(c, metric, split) for c in cells if c.status == "done")


def _mean_std(row: dict[str, Any] | None, digits: int) -> str:
    return "—" if row is None else f"{row['mean']:.{digits}f} ± {row['std']:.{digits}f}"


def _axis_header(axes: Sequence[str], info: TaskInfo) -> list[str]:
    return [a.split(".")[-1] if a != plots.BUDGET_AXIS else f"budget ({info.budget_unit})" for a in axes]


def _summary_rows(cells: Sequence[Cell], metric: str, info: TaskInfo, split: str) -> tuple[list[str], list[list[str]]]:
    """Header and string rows of the summary table (one row per group of seeds, every report metric a column)."""
    axes = group_axes(c for c in cells if c.status == "done")
    others = [m for m in info.metrics if m != metric]
    header = _axis_header(axes, info)
    header += ["n seeds", f"{metric} mean ± std", f"{metric} 95% CI", *(f"{m} mean ± std" for m in others),
               "mean train s", "trainable params"]
    by_group = {m: {tuple(r[a] for a in axes): r for r in summarize(cells, m, axes, split)} for m in others}
    digits = {m: _digits(cells, m, split) for m in info.metrics if m != metric}
    d = _digits(cells, metric, split)
    rows = []
    for row in summarize(cells, metric, axes, split):
        key = tuple(row[a] for a in axes)
        rows.append([_fmt(row[a]) for a in axes] + [
            str(row["n"]), _mean_std(row, d), f"[{row['ci_low']:.{d}f}, {row['ci_high']:.{d}f}]",
            *(_mean_std(by_group[m].get(key), digits[m]) for m in others),
            _fmt(row["train_seconds"], 1), _fmt_params(row["trainable_parameters"])])
    return header, rows


def _split_rows(cells: Sequence[Cell], metric: str, info: TaskInfo) -> tuple[list[str], list[list[str]]]:
    """``metric`` (mean ± std over seeds) on every stored split side by side: test sets first, eval last."""
    splits = available_splits(cells)
    axes = group_axes(c for c in cells if c.status == "done")
    per_split = {s: {tuple(r[a] for a in axes): r for r in summarize(cells, metric, axes, s)} for s in splits}
    keys = sorted({k for rows in per_split.values() for k in rows}, key=lambda k: tuple(sort_key(v) for v in k))
    header = _axis_header(axes, info) + [f"{metric} on {grid_split_label(cells, s)}" for s in splits]
    digits = {s: _digits(cells, metric, s) for s in splits}
    rows = [[_fmt(v) for v in key] + [_mean_std(per_split[s].get(key), digits[s]) for s in splits] for key in keys]
    tests = [s for s in splits if s != EVAL]
    for other in tests[1:]:  # the transfer gap: the first test set (e.g. the source language) minus each other
        header.append(f"gap ({tests[0]} − {other})")
        for key, row in zip(keys, rows, strict=True):
            first, second = per_split[tests[0]].get(key), per_split[other].get(key)
            gap = None if first is None or second is None else first["mean"] - second["mean"]
            row.append(_fmt(gap, digits[other]))
    return header, rows


def _comparisons(cells: Sequence[Cell], metric: str, split: str) -> tuple[list[str], list[list[str]]]:
    """Each transfer strategy vs each baseline present (paired over the other axes), on ``metric`` on ``split``."""
    strategies = sorted({str(c.axes["strategy"]) for c in cells if c.status == "done" and "strategy" in c.axes},
                        key=sort_key)
    header = ["strategy", "vs", "pairs", f"mean {metric} A", f"mean {metric} B", "mean diff (A−B)", "95% bootstrap CI",
              "p (sign-flip)"]
    d = _digits(cells, metric, split)
    rows = []
    for baseline in (b for b in strategies if is_baseline(b)):
        for strategy in (s for s in strategies if not is_baseline(s)):
            r = paired_comparison(cells, strategy, baseline, metric, split=split)
            if r["n_pairs"]:
                rows.append([strategy, baseline, str(r["n_pairs"]), _fmt(r["mean_a"], d), _fmt(r["mean_b"], d),
                             f"{r['mean_diff']:+.{d}f}", f"[{r['ci_low']:+.{d}f}, {r['ci_high']:+.{d}f}]",
                             _fmt_p(r["p_value"])])
    return header, rows


def _figures(cells: Sequence[Cell], metric: str, info: TaskInfo, split: str) -> list[tuple[str, str, bytes]]:
    """``(file stem, title, png)`` of every plot the data supports (a plot that cannot be drawn is left out)."""
    best = plots.best_cell(cells, metric, split)
    label = grid_split_label(cells, split)
    makers: list[tuple[str, str, Callable[[], bytes]]] = [
        ("data_efficiency", f"Data-efficiency curve ({label})",
         lambda: plots.data_efficiency_curve(cells, metric, info.budget_unit, split)),
        ("cost_quality", f"Cost vs quality ({label})", lambda: plots.cost_quality_plot(cells, metric, split)),
        ("learning_curves", f"Learning curves: per-epoch {grid_split_label(cells, EVAL)}",
         lambda: plots.learning_curves(cells, metric)),
        ("pretraining", "Continued pretraining (DAPT/TAPT): held-out masked-LM loss",
         lambda: plots.pretraining_curves(cells)),
    ]
    if best is not None:
        value = f"{metric_value(best, metric, split):.{_digits(cells, metric, split)}f}"
        makers.append(("confusion_matrix", f"Confusion matrix of the best run on {label} ({metric} {value})",
                       lambda: plots.confusion_matrix_plot(best, split)))
    figures = []
    for stem, title, make in makers:
        try:
            figures.append((stem, title, make()))
        except UserError:
            continue
    return figures


def _axes_text(cell: Cell) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell.axes.items())


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1, caption: str = "") -> str:
    def cells(values: Sequence[str], tag: str) -> str:
        return "".join(f"<{tag}{' class=l' if i < left else ''}>{html.escape(v)}</{tag}>" for i, v in enumerate(values))

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{cells(header, 'th')}</tr></thead><tbody>{body}</tbody></table>"


def _yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _html_image(title: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<h2>{html.escape(title)}</h2><img alt=\"{html.escape(title)}\" src=\"data:image/png;base64,{data}\">"


def _html_continual(panel: ContinualPanel | None) -> list[str]:
    """The continual-learning section: one row per continual run, then its figures (nothing without such runs)."""
    if panel is None:
        return []
    parts = ["<h2>Continual learning</h2>",
             _html_table(panel.header, panel.rows, left=len(panel.header) - 4, caption=CONTINUAL_CAPTION)]
    parts += [f"<p>{html.escape(panel.note)}</p>"] if panel.note else []
    return parts + [_html_image(title, png) for _, title, png in panel.figures]


def _html(title: str, sections: dict[str, Any], cells: Sequence[Cell], figures: list[tuple[str, str, bytes]],
          panel: ContinualPanel | None = None) -> str:
    esc = html.escape
    label = sections["label"]
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{esc(title)}</h1><p class=meta>{esc(sections['meta'])}</p>",
             f"<h2>Summary on {esc(label)}</h2>",
             _html_table(*sections["summary"], left=sections["summary_axes"], caption=split_description(label))]
    if sections["splits"]:
        parts += [f"<h2>{esc(sections['metric'])} per split</h2>",
                  _html_table(*sections["splits"], left=sections["summary_axes"], caption=SPLITS_CAPTION)]
    header, rows = sections["comparisons"]
    parts.append(f"<h2>Paired comparisons on {esc(label)}</h2>")
    parts.append(_html_table(header, rows, left=2) if rows else "<p>No transfer strategy paired with a baseline "
                 f"({' or '.join(BASELINES)}).</p>")
    parts += [_html_image(fig_title, png) for _, fig_title, png in figures]
    parts += _html_continual(panel)
    failed = [c for c in cells if c.status == "failed"]
    parts.append(f"<h2>Failed cells ({len(failed)})</h2>")
    parts.append(_html_table(["cell", "axes", "error"], [[c.cell_id, _axes_text(c), c.error or ""] for c in failed],
                             left=3) if failed else "<p>None.</p>")
    parts.append("<h2>Reproduce</h2>")
    for cell in cells:
        parts.append(f"<details><summary><code>{esc(cell.cell_id)}</code> [{esc(cell.status)}] "
                     f"{esc(_axes_text(cell))}</summary><p>Command:</p><pre>{esc(cell.command or '(not recorded)')}</pre>"
                     f"<p>Config:</p><pre>{esc(_yaml(cell.config))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(_md_escape(v) for v in row) + " |" for row in rows])


def _md_continual(panel: ContinualPanel | None, images: list[tuple[str, str]]) -> list[str]:
    """The continual-learning section with its figures' links (nothing without continual runs)."""
    if panel is None:
        return []
    parts = ["## Continual learning", "", f"_{CONTINUAL_CAPTION}_", "", _md_table(panel.header, panel.rows), ""]
    parts += [panel.note, ""] if panel.note else []
    for fig_title, link in images:
        parts += [f"### {fig_title}", "", f"![{fig_title}]({link})", ""]
    return parts


def _markdown(title: str, sections: dict[str, Any], cells: Sequence[Cell], images: list[tuple[str, str]],
              panel: ContinualPanel | None = None, panel_images: list[tuple[str, str]] | None = None) -> str:
    label = sections["label"]
    parts = [f"# {title}", "", f"_{sections['meta']}_", "", f"## Summary on {label}", "", f"_{split_description(label)}_",
             "", _md_table(*sections["summary"]), ""]
    if sections["splits"]:
        parts += [f"## {sections['metric']} per split", "", f"_{SPLITS_CAPTION}_", "", _md_table(*sections["splits"]), ""]
    parts += [f"## Paired comparisons on {label}", ""]
    header, rows = sections["comparisons"]
    parts += [_md_table(header, rows) if rows else "No transfer strategy paired with a baseline.", ""]
    for fig_title, link in images:
        parts += [f"## {fig_title}", "", f"![{fig_title}]({link})", ""]
    parts += _md_continual(panel, panel_images or [])
    failed = [c for c in cells if c.status == "failed"]
    parts += [f"## Failed cells ({len(failed)})", ""]
    parts += [_md_table(["cell", "axes", "error"], [[c.cell_id, _axes_text(c), c.error or ""] for c in failed])
              if failed else "None.", "", "## Reproduce", ""]
    for cell in cells:
        parts += [f"<details><summary><code>{cell.cell_id}</code> [{cell.status}] {html.escape(_axes_text(cell))}"
                  "</summary>", "", "```bash", cell.command or "(not recorded)", "```", "", "```yaml",
                  _yaml(cell.config).rstrip(), "```", "", "</details>", ""]
    return "\n".join(parts)


def _sections(results_dir: str, cells: Sequence[Cell], metric: str, info: TaskInfo, split: str) -> dict[str, Any]:
    counts = {s: sum(c.status == s for c in cells) for s in ("done", "pruned", "failed", "running", "pending")}
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    summary = _summary_rows(cells, metric, info, split)
    label = grid_split_label(cells, split)
    missing = sum(c.status == "done" and metric_value(c, metric, split) is None for c in cells)
    return {"meta": f"Generated {now} from {os.path.abspath(results_dir)} — "
                    + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
                    + f" — task {info.name}, compared on {metric} (reported: {', '.join(info.metrics)})"
                    + f" — figures on {label}" + (f" ({missing} done cells without it left out)" if missing else ""),
            "label": label, "metric": metric,
            "summary": summary, "summary_axes": len(summary[0]) - len(info.metrics) - 4,
            "splits": _split_rows(cells, metric, info) if len(available_splits(cells)) > 1 else None,
            "comparisons": _comparisons(cells, metric, split)}


def render_report(results_dir: str, output_path: str, metric: str | None = None, split: str | None = None) -> str:
    """Write the report of the grid in ``results_dir`` to ``output_path`` (``.html`` or ``.md``); return the path.

    ``metric`` (default: the primary metric of the results' task, e.g. accuracy for
    classification, entity F1 for token classification) drives the comparisons and plots;
    it must be one of the task's report metrics, which all appear in the summary table.
    ``split`` (a split id such as ``eval``, ``test``, ``test:zh``, or a test-set name; default:
    the first test set when the runs have one, else ``eval``) is the split the figures come from.

    Raises :class:`UserError` when ``results_dir`` holds no results database, when it has
    no done cells, when ``metric`` is not one of the task's report metrics, when ``split``
    names no stored split, or when ``output_path`` ends in neither ``.html`` nor ``.md``.
    """
    stem, ext = os.path.splitext(output_path)
    if ext.lower() not in (".html", ".htm", ".md"):
        raise UserError(f"report format must be .html or .md, got '{output_path}'")
    cells = ResultsStore(results_dir, create=False).cells()
    info = read_task(cells, results_dir)
    metric = choose_metric(info, metric)
    split = choose_split(cells, split)
    done = [c for c in cells if c.status == "done" and metric_value(c, metric, split) is not None]
    if not done:
        raise UserError(f"no done cells with '{metric}' on {split} in {results_dir}; nothing to report yet")
    sections = _sections(results_dir, cells, metric, info, split)
    title = f"transferkit experiment report: {os.path.basename(os.path.abspath(results_dir))}"
    figures = _figures(cells, metric, info, split) + tuning_figures(cells, results_dir)  # a search's, if any
    panel = continual_panel(cells)
    if ext.lower() == ".md":
        images = _write_images(f"{stem}_files", figures)
        panel_images = _write_images(f"{stem}_files", panel.figures) if panel else []
        text = _markdown(title, sections, cells, images, panel, panel_images)
        write_bytes_atomic(output_path, text.encode("utf-8"))
    else:
        write_bytes_atomic(output_path, _html(title, sections, cells, figures, panel).encode("utf-8"))
    return output_path


def _write_images(files_dir: str, figures: list[tuple[str, str, bytes]]) -> list[tuple[str, str]]:
    """Write each figure as ``<files_dir>/<stem>.png``; return ``(title, relative link)`` pairs for Markdown."""
    os.makedirs(files_dir, exist_ok=True)
    for name, _, png in figures:
        write_bytes_atomic(os.path.join(files_dir, f"{name}.png"), png)
    return [(t, f"{os.path.basename(files_dir)}/{name}.png") for name, t, _ in figures]
