"""The continual-learning panel of a report: ACC / BWT / FWT per run, the accuracy matrix and its curves.

A continual run stores ``metrics["continual"]``, the dict of
:func:`~transferkit.evaluation.continual.continual_summary`: ``setting``, stage ``names``, the
accuracy ``matrix`` R (``R[t][i]`` = accuracy on stage i's test set after training stage t; None
rows where the method was not evaluated, as for ``joint``), the untrained ``baseline`` and
``acc``, ``bwt``, ``fwt``.  Everything here reads that stored dict (never torch): the report's
table and figures, the ``continual_*`` columns of ``transferkit results`` and the model card.

>>> block = {"setting": "domain", "names": ["a", "b"], "matrix": [[0.9, 0.6], [0.7, 0.8]],
...          "baseline": [0.5, 0.5], "acc": 0.75, "bwt": -0.2, "fwt": 0.1}
>>> summary_text(block)
'ACC 75.0%, BWT -20.0%, FWT +10.0%'
>>> matrix_rows(block)
(['', 'a', 'b'], [['after a', '90.0', '60.0'], ['after b', '70.0', '80.0']])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferkit.core.results import Cell
from transferkit.reporting import plots
from transferkit.reporting.stats import sort_key

__all__ = ["COLUMNS", "FIGURE_LIMIT", "ContinualPanel", "continual_block", "continual_panel", "continual_plot",
           "continual_values", "matrix_rows", "percent", "summary_text"]

KEY = "continual"
"""Key of the continual block in a stored run's ``metrics``."""

COLUMNS = ("continual_acc", "continual_bwt", "continual_fwt")
"""Result columns of a continual run: ACC, BWT and FWT as fractions (None where undefined)."""

FIGURE_LIMIT = 12
"""At most this many runs get a figure, to bound the report's size; the table lists them all."""

CAPTION = ("ACC: mean accuracy on every stage's test set after the last stage; BWT: mean change on each earlier "
           "stage from right after training it to the end (negative = forgetting); FWT: mean gain on each stage "
           "before training it over the untrained model (domain setting only). Lopez-Paz & Ranzato 2017.")


def continual_block(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run's stored continual block, or None for a run that is not continual."""
    block = (metrics or {}).get(KEY)
    return block if isinstance(block, dict) and block.get("names") else None


def continual_values(metrics: dict[str, Any] | None) -> dict[str, float | None]:
    """``continual_acc``, ``continual_bwt``, ``continual_fwt`` of a run (all None when it is not continual)."""
    block = continual_block(metrics) or {}
    return {column: block.get(column.removeprefix("continual_")) for column in COLUMNS}


def percent(value: float | None, signed: bool = False) -> str:
    """``71.2%`` (``+3.4%`` when ``signed``) for a fraction, ``n/a`` for None."""
    return "n/a" if value is None else f"{100 * value:{'+' if signed else ''}.1f}%"


def summary_text(block: dict[str, Any]) -> str:
    """``ACC 71.2%, BWT -3.4%, FWT n/a``."""
    return (f"ACC {percent(block.get('acc'))}, BWT {percent(block.get('bwt'), signed=True)}, "
            f"FWT {percent(block.get('fwt'), signed=True)}")


def _matrix(block: dict[str, Any]) -> np.ndarray:
    """R as a (T, T) float array, NaN where a row was not evaluated."""
    stages = len(block["names"])
    rows = [[np.nan] * stages if row is None else [np.nan if v is None else float(v) for v in row]
            for row in block["matrix"]]
    return np.array(rows, dtype=float).reshape(stages, stages)


def matrix_rows(block: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of R in percent, one row ``after NAME`` per stage, blank where not evaluated."""
    names = [str(n) for n in block["names"]]
    rows = [[f"after {name}", *("" if np.isnan(v) else f"{100 * v:.1f}" for v in row)]
            for name, row in zip(names, _matrix(block), strict=True)]
    return ["", *names], rows


def _draw_matrix(fig: Any, ax: Any, block: dict[str, Any]) -> None:
    """Heat map of R with the value in each square; unevaluated rows stay blank."""
    matrix = _matrix(block)
    names = [str(n) for n in block["names"]]
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8)
    rotate = len(names) > 3
    ax.set_xticks(range(len(names)), names, rotation=45 if rotate else 0, ha="right" if rotate else "center", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("test set of stage", fontsize=8)
    ax.set_ylabel("after stage", fontsize=8)
    if len(names) <= 15:
        for (r, c), value in np.ndenumerate(matrix):
            if not np.isnan(value):
                ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if value > 0.6 else "white")
    ax.set_title(f"accuracy matrix R ({block.get('setting')} setting)", fontsize=9)


def _draw_curves(ax: Any, block: dict[str, Any]) -> None:
    """One line per test set: its accuracy after each stage (x = stages trained so far; 0 = untrained).

    Rows not evaluated are NaN, which breaks a line rather than bridging stages nobody measured.
    """
    matrix = _matrix(block)
    names = [str(n) for n in block["names"]]
    baseline = block.get("baseline")
    first = 0 if baseline is not None else 1
    x = np.arange(first, len(names) + 1)
    for i, name in enumerate(names):
        y = matrix[:, i] if baseline is None else np.concatenate([[baseline[i]], matrix[:, i]])
        color, marker = plots._COLORS[i % len(plots._COLORS)], plots._MARKERS[i % len(plots._MARKERS)]
        ax.plot(x, y, color=color, marker=marker, markersize=4, linewidth=1.2, label=name)
    ax.set_xticks(x, (["none"] if baseline is not None else []) + names, fontsize=7,
                  rotation=45 if len(names) > 3 else 0)
    ax.set_xlabel("stages trained so far (up to and including)", fontsize=8)
    ax.set_ylabel("accuracy", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    ax.legend(title="test set", fontsize=6, title_fontsize=7)
    ax.set_title("accuracy on each stage's test set after each stage", fontsize=9)


def continual_plot(block: dict[str, Any], title: str = "") -> bytes:
    """Two panels: the heat map of R and the per-test-set accuracy curves over the stages."""
    stages = len(block["names"])
    side = min(8.0, 3.0 + 0.4 * stages)
    fig = plots._figure(2 * side + 1.0, side, layout="constrained")
    matrix_ax, curves_ax = fig.subplots(1, 2)
    _draw_matrix(fig, matrix_ax, block)
    _draw_curves(curves_ax, block)
    if title:
        fig.suptitle(f"{title} — {summary_text(block)}", fontsize=9)
    return plots._png(fig)


@dataclass
class ContinualPanel:
    """What the report shows for continual runs: a table (one row per run), its figures and a note."""

    header: list[str]
    rows: list[list[str]]
    figures: list[tuple[str, str, bytes]] = field(default_factory=list)
    note: str = ""


def _axes_text(cell: Cell) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in cell.axes.items())


def _fraction(value: float | None, signed: bool = False) -> str:
    return "—" if value is None else f"{value:{'+' if signed else ''}.3f}"


def continual_panel(cells: Sequence[Cell], limit: int = FIGURE_LIMIT) -> ContinualPanel | None:
    """The panel of the done cells that stored a continual block (None when there are none).

    Figures are drawn for the first ``limit`` runs in axis order; the note says how many were left out.
    """
    runs = [c for c in cells if c.status == "done" and continual_block(c.metrics) is not None]
    if not runs:
        return None
    axes = list(dict.fromkeys(a for c in runs for a in c.axes))
    runs.sort(key=lambda c: tuple(sort_key(c.axes.get(a)) for a in axes))
    header = [*(a.split(".")[-1] for a in axes), "setting", "stages", *COLUMNS]
    rows = []
    for cell in runs:
        block = continual_block(cell.metrics) or {}
        values = continual_values(cell.metrics)
        rows.append([*(str(cell.axes.get(a, "")) for a in axes), str(block.get("setting")), str(len(block["names"])),
                     _fraction(values["continual_acc"]), _fraction(values["continual_bwt"], signed=True),
                     _fraction(values["continual_fwt"], signed=True)])
    figures = [(f"continual_{i + 1}", f"Continual learning: {_axes_text(cell)}",
                continual_plot(continual_block(cell.metrics) or {}, _axes_text(cell)))
               for i, cell in enumerate(runs[:limit])]
    left_out = len(runs) - len(figures)
    note = f"Figures for the first {len(figures)} of {len(runs)} continual runs; {left_out} left out." if left_out else ""
    return ContinualPanel(header, rows, figures, note)
