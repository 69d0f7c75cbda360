"""Plots of grid results as PNG bytes (matplotlib, Agg, no pyplot state).

Every function takes cells from :class:`~transferkit.core.results.ResultsStore` and
returns the encoded PNG, ready to embed in HTML or write next to a Markdown report.
Figures are built with :class:`matplotlib.figure.Figure` directly (no global pyplot
state, nothing to close) and kept small (``dpi=80``) so a 48-run report stays light.
Quality figures come from one split (``split``; default: the grid's first test set, else
eval; see :mod:`~transferkit.reporting.report_split`), named on the axis; learning curves
plot the per-epoch eval history, the split best-checkpoint restore selects on.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from transferkit.core.errors import UserError
from transferkit.core.results import Cell
from transferkit.reporting.report_split import EVAL, choose_split, grid_split_label, split_metrics
from transferkit.reporting.stats import group_axes, is_seed_axis, metric_value, sort_key, summarize

__all__ = ["BUDGET_AXIS", "best_cell", "class_labels", "confusion_matrix_plot", "cost_quality_plot", "data_efficiency_curve",
           "efficiency_lines", "learning_curves", "pretraining_curves"]

BUDGET_AXIS = "data.budget"
"""The axis holding the training budget (labels per class for classification, examples for other tasks)."""

DPI = 80
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def _figure(width: float, height: float, **kwargs: Any) -> Any:
    from matplotlib.figure import Figure  # lazy: matplotlib import costs ~0.5 s

    return Figure(figsize=(width, height), dpi=DPI, **kwargs)


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _done(cells: Iterable[Cell], metric: str, split: str) -> list[Cell]:
    return [c for c in cells if c.status == "done" and metric_value(c, metric, split) is not None]


def _split_of(cells: Sequence[Cell], split: str | None) -> tuple[str, str]:
    """``(split, axis title suffix)``: the split plotted (default: the grid's reported one) and its label."""
    chosen = split or choose_split(cells)
    return chosen, grid_split_label(cells, chosen)


def _series_axes(cells: Sequence[Cell]) -> list[str]:
    """The axes telling the lines of a plot apart: every non-seed axis but the budget (strategy, model, init_from ...)."""
    return [a for a in group_axes(cells) if a != BUDGET_AXIS]


def _series_name(values: dict[str, Any], axes: Sequence[str]) -> str:
    """A line's legend label: ``finetune``, or ``finetune / init_from=runs/en`` when other axes vary too."""
    parts = [str(values.get(a)) if a == "strategy" else f"{a.split('.')[-1]}={values.get(a)}" for a in axes]
    return " / ".join(parts) or "run"


def _series(cells: Sequence[Cell], axes: Sequence[str]) -> list[str]:
    keys = sorted({tuple(c.axes.get(a) for a in axes) for c in cells}, key=lambda k: tuple(sort_key(v) for v in k))
    return [_series_name(dict(zip(axes, key, strict=True)), axes) for key in keys]


def _style(series: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A fixed (colour, marker) per line, in the same order in every plot."""
    return {s: (_COLORS[i % len(_COLORS)], _MARKERS[i % len(_MARKERS)]) for i, s in enumerate(series)}


def efficiency_lines(cells: Sequence[Cell], metric: str, split: str) -> dict[str, list[dict[str, Any]]]:
    """Legend label -> that line's summary rows (budget, mean, CI) in budget order, for the done ``cells``."""
    axes = _series_axes(cells)
    rows = [r for r in summarize(cells, metric, [*axes, BUDGET_AXIS], split) if isinstance(r[BUDGET_AXIS], (int, float))]
    lines = {name: [r for r in rows if _series_name(r, axes) == name] for name in _series(cells, axes)}
    return {name: sorted(mine, key=lambda r: float(r[BUDGET_AXIS])) for name, mine in lines.items() if mine}


def data_efficiency_curve(cells: Iterable[Cell], metric: str = "accuracy", budget_unit: str = "labels per class",
                          split: str | None = None) -> bytes:
    """``metric`` on ``split`` vs the budget (log x), one line per setting of the other non-seed axes
    (strategy, model, init_from ...), 95% t band over seeds.

    ``budget_unit`` says what ``data.budget`` counts: labels per class for classification,
    training sentences / questions / examples for the other tasks.
    """
    split, label = _split_of(list(cells), split)
    done = _done(cells, metric, split)
    if not any(BUDGET_AXIS in c.axes for c in done):
        raise UserError(f"no done cells with a '{BUDGET_AXIS}' axis to plot a data-efficiency curve")
    lines = efficiency_lines(done, metric, split)
    style = _style(list(lines))
    fig = _figure(6.4, 4.0, layout="constrained")
    ax = fig.add_subplot()
    for name, mine in lines.items():
        x = np.array([r[BUDGET_AXIS] for r in mine], dtype=float)
        color, marker = style[name]
        ax.plot(x, [r["mean"] for r in mine], marker=marker, color=color, label=name)
        ax.fill_between(x, [r["ci_low"] for r in mine], [r["ci_high"] for r in mine], color=color, alpha=0.18,
                        linewidth=0)
    ax.set_xscale("log")
    budgets = sorted({float(r[BUDGET_AXIS]) for mine in lines.values() for r in mine})
    ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel(f"budget: {budget_unit} (log scale)")
    ax.set_ylabel(f"{metric} ({label})")
    ax.set_title(f"{metric} on {label} vs {budget_unit}\n(mean, 95% CI over seeds)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def cost_quality_plot(cells: Iterable[Cell], metric: str = "accuracy", split: str | None = None) -> bytes:
    """Two panels: train seconds vs ``metric`` and trainable parameters vs ``metric`` on ``split`` (log x)."""
    split, label = _split_of(list(cells), split)
    done = _done(cells, metric, split)
    axes = _series_axes(done)
    series = _series(done, axes)
    style = _style(series)
    fig = _figure(9.6, 3.8, layout="constrained")
    panels = fig.subplots(1, 2, sharey=True)
    for ax, attr, label in zip(panels, ("train_seconds", "trainable_parameters"),
                               ("train seconds (log)", "trainable parameters (log)"), strict=True):
        for name in series:
            points = [(getattr(c, attr), metric_value(c, metric, split)) for c in done
                      if _series_name(c.axes, axes) == name]
            points = [(x, y) for x, y in points if x is not None and x > 0]
            if points:
                color, marker = style[name]
                ax.scatter(*zip(*points, strict=True), color=color, marker=marker, label=name, alpha=0.8, s=28)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    panels[0].set_ylabel(f"{metric} ({label})")
    panels[0].set_title("Cost: training time")
    panels[1].set_title("Cost: trainable parameters")
    handles, labels = panels[0].get_legend_handles_labels()
    if handles:
        panels[1].legend(handles, labels, fontsize="small")
    return _png(fig)


def _curves(cell: Cell, metric: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """``(loss points, eval-metric points)`` of a run's history as ``(step, value)``."""
    loss, evals = [], []
    for entry in cell.history or []:
        step = entry.get("step")
        if step is None:
            continue
        if isinstance(entry.get("loss"), (int, float)):
            loss.append((float(step), float(entry["loss"])))
        value = (entry.get("eval") or {}).get(metric)
        if isinstance(value, (int, float)):
            evals.append((float(step), float(value)))
    return loss, evals


def _run_groups(cells: Sequence[Cell]) -> dict[str, list[Cell]]:
    """Runs grouped by their non-seed axes, labelled ``strategy / budget / ...``."""
    axes = group_axes(cells)
    groups: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in cells:
        groups.setdefault(tuple(cell.axes.get(a) for a in axes), []).append(cell)
    ordered = sorted(groups, key=lambda k: tuple(sort_key(v) for v in k))
    return {" / ".join(str(v) if a == "strategy" else f"{a.split('.')[-1]}={v}" for a, v in zip(axes, key, strict=True)):
            groups[key] for key in ordered}


def _seed_label(cell: Cell) -> str:
    seeds = [f"{a.split('.')[-1]} {v}" for a, v in cell.axes.items() if is_seed_axis(a)]
    return ", ".join(seeds) or cell.cell_id[:8]


def learning_curves(cells: Iterable[Cell], metric: str = "accuracy") -> bytes:
    """Small multiples: per group of runs, training loss vs step and eval ``metric`` vs step, one line per seed.

    The eval points are the per-epoch evaluations on the eval split (the split best-checkpoint
    restore selects on), never a test set.
    """
    from matplotlib.ticker import MaxNLocator

    runs = [c for c in cells if c.status == "done" and any(_curves(c, metric))]
    if not runs:
        raise UserError("no done run has a training history to plot learning curves")
    groups = _run_groups(runs)
    per_row = 2  # two groups side by side, each a (loss, eval) pair of panels
    nrows = -(-len(groups) // per_row)
    fig = _figure(12.0, 1.9 * nrows + 0.4)
    axes = np.atleast_2d(fig.subplots(nrows, 2 * per_row, squeeze=False))
    fig.subplots_adjust(left=0.05, right=0.99, top=1 - 0.35 / (1.9 * nrows + 0.4), bottom=0.5 / (1.9 * nrows + 0.4),
                        hspace=0.75, wspace=0.28)
    for ax in axes.flat[2 * len(groups):]:
        ax.set_visible(False)
    for i, (label, members) in enumerate(groups.items()):
        loss_ax, eval_ax = axes.flat[2 * i], axes.flat[2 * i + 1]
        for j, cell in enumerate(sorted(members, key=lambda c: _seed_label(c))):
            loss, evals = _curves(cell, metric)
            color = _COLORS[j % len(_COLORS)]
            if loss:
                loss_ax.plot(*zip(*loss, strict=True), color=color, linewidth=1, label=_seed_label(cell))
            if evals:
                eval_ax.plot(*zip(*evals, strict=True), color=color, linewidth=1, marker=".", markersize=4)
        loss_ax.set_title(f"{label}: loss", fontsize=8, y=1.0, pad=3)  # fixed y: skips costly auto-placement
        eval_ax.set_title(f"{label}: eval {metric}", fontsize=8, y=1.0, pad=3)
        for ax in (loss_ax, eval_ax):
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
            ax.tick_params(labelsize=6)
            ax.set_xlabel("step", fontsize=7)
            ax.grid(True, alpha=0.3)
        if loss_ax.lines:
            loss_ax.legend(fontsize=5, loc="upper right")
    return _png(fig)


def _stage_label(cell: Cell, stage: dict[str, Any]) -> str:
    axes = ", ".join(f"{a.split('.')[-1]}={v}" for a, v in cell.axes.items() if not is_seed_axis(a) and a != "strategy")
    return f"{stage.get('corpus')}, {stage.get('texts')} texts" + (f" ({axes})" if axes else "")


def pretraining_curves(cells: Iterable[Cell]) -> bytes:
    """Held-out masked-LM loss vs step of every distinct continued-pretraining stage (DAPT/TAPT) among the runs.

    Step 0 is the unadapted encoder (with its MLM head, warmed up when it was new); runs that share an
    adapted encoder (the seeds of a grid, the pairs of one target domain) share one curve, drawn once.
    """
    curves: dict[tuple[tuple[float, float], ...], str] = {}
    for cell in cells:
        stage = (cell.metrics.get("encoder") or {}).get("continued_pretraining") if cell.status == "done" else None
        if stage:
            points = tuple((float(p["step"]), float(p["mlm_loss"])) for p in stage["heldout_mlm_loss"])
            curves.setdefault(points, _stage_label(cell, stage))
    if not curves:
        raise UserError("no done run did continued pretraining: nothing to plot")
    fig = _figure(6.5, 3.4)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.11, right=0.98, top=0.95, bottom=0.15)
    for i, (points, label) in enumerate(curves.items()):
        ax.plot(*zip(*points, strict=True), color=_COLORS[i % len(_COLORS)], marker=_MARKERS[i % len(_MARKERS)],
                markersize=4, linewidth=1.2, label=label)
    ax.set_xlabel("masked-LM step (0 = before continued pretraining)", fontsize=8)
    ax.set_ylabel("held-out MLM loss", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6)
    return _png(fig)


def best_cell(cells: Iterable[Cell], metric: str = "accuracy", split: str | None = None) -> Cell | None:
    """The done cell with the highest ``metric`` on ``split`` (default: the grid's reported split), or None.

    The first one wins on ties.
    """
    cells = list(cells)
    split = split or choose_split(cells)
    done = _done(cells, metric, split)
    return max(done, key=lambda c: metric_value(c, metric, split)) if done else None  # type: ignore[arg-type,return-value]


def class_labels(cell: Cell, split: str = EVAL) -> list[str]:
    """Label names of a run in confusion-matrix order on ``split`` (``per_class`` keys, else 0..K-1)."""
    evaluation = split_metrics(cell.metrics, split) or {}
    matrix = evaluation.get("confusion_matrix") or []
    labels = [str(k) for k in (evaluation.get("per_class") or {})]
    return labels if len(labels) == len(matrix) else [str(i) for i in range(len(matrix))]


def confusion_matrix_plot(cell: Cell, split: str = EVAL) -> bytes:
    """The run's confusion matrix on ``split`` (rows true, columns predicted) with counts and class labels."""
    matrix = np.asarray((split_metrics(cell.metrics, split) or {}).get("confusion_matrix") or [], dtype=float)
    if matrix.ndim != 2 or matrix.size == 0 or matrix.shape[0] != matrix.shape[1]:
        raise UserError(f"cell {cell.cell_id} has no square confusion matrix on {split} in its metrics")
    labels = class_labels(cell, split)
    k = matrix.shape[0]
    side = min(9.0, 2.6 + 0.45 * k)
    fig = _figure(side + 1.0, side, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), labels, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        threshold = matrix.max() / 2 if matrix.max() > 0 else 1
        for (r, c), value in np.ndenumerate(matrix):
            ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=8,
                    color="white" if value > threshold else "black")
    title = " / ".join(f"{a.split('.')[-1]}={v}" for a, v in cell.axes.items())
    ax.set_title(f"Best run: {title} ({split})", fontsize=9)
    return _png(fig)
