"""Synthetic grid results (no training): 4 strategies x budgets x 3 seeds, plus one failed cell.

With ``tests`` the cells also store test sets (``metrics["test"][name]``); test set ``i`` scores
``TEST_GAP * (i + 1)`` below eval, so a figure read from the wrong split shows.  With
``selected`` the neural strategies record ``selected_on: eval`` (best-checkpoint restore).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from transferkit.core.results import Cell, ResultsStore, cell_id
from transferkit.experiments.grid_results import task_info
from transferkit.reporting.task_metrics import INFO_KEY

STRATEGIES = {  # name: (base accuracy, gain per log2 budget, trainable parameters, seconds per label)
    "finetune": (0.55, 0.05, 22_700_000, 0.50),
    "lora": (0.52, 0.05, 150_000, 0.30),
    "scratch": (0.35, 0.03, 1_200_000, 0.10),
    "tfidf": (0.40, 0.04, 30_000, 0.002),
}
LABELS = ["negative", "neutral", "positive"]
TEST_GAP = 0.1
"""How far below its eval accuracy each further test set of a fake cell scores."""


def _history(rng: np.random.Generator, accuracy: float, steps: int) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    for step in range(10, steps + 1, 10):
        loss = 1.1 * math.exp(-step / (steps / 3)) + 0.1 + 0.02 * rng.standard_normal()
        history.append({"step": step, "epoch": step / steps * 3, "loss": loss, "lr": 2e-5 * (1 - step / steps)})
        if step % 50 == 0:
            value = accuracy * (1 - math.exp(-step / (steps / 4)))
            history.append({"step": step, "epoch": step / steps * 3, "eval": {"accuracy": value, "macro_f1": value - 0.02}})
    return history


def _metrics(accuracy: float, cell: Cell) -> dict[str, Any]:
    n = 300
    correct = round(accuracy * n)
    wrong = n - correct
    diag = [correct // 3 + (i < correct % 3) for i in range(3)]
    off = [wrong // 3 + (i < wrong % 3) for i in range(3)]
    matrix = [[diag[r] if r == c else off[r] // 2 + (c == (r + 1) % 3) * (off[r] % 2) for c in range(3)] for r in range(3)]
    per_class = {label: {"precision": accuracy, "recall": accuracy, "f1": accuracy, "support": sum(matrix[i])}
                 for i, label in enumerate(LABELS)}
    return {"eval": {"accuracy": accuracy, "macro_f1": accuracy - 0.02, "roc_auc": min(1.0, accuracy + 0.1),
                     "confusion_matrix": matrix, "per_class": per_class,
                     "ci95": {"accuracy": [accuracy - 0.05, accuracy + 0.05], "macro_f1": [accuracy - 0.07, accuracy + 0.03]}},
            "train_seconds": cell.train_seconds, "eval_seconds": 1.5, "peak_rss_mb": 900.0,
            "trainable_parameters": cell.trainable_parameters, "total_parameters": 22_700_000,
            INFO_KEY: task_info("classification").to_dict()}  # what the grid stores with a finished cell


def held_out_accuracy(eval_accuracy: float, index: int) -> float:
    """The fake accuracy of a cell's test set number ``index`` (0-based) given its eval accuracy."""
    return eval_accuracy - TEST_GAP * (index + 1)


def _with_splits(metrics: dict[str, Any], cell: Cell, tests: Sequence[str], selected: bool) -> dict[str, Any]:
    accuracy = metrics["eval"]["accuracy"]
    if tests:
        metrics["test"] = {name: _metrics(held_out_accuracy(accuracy, i), cell)["eval"] for i, name in enumerate(tests)}
    metrics["selected_on"] = "eval" if selected and cell.axes["strategy"] != "tfidf" else None
    return metrics


def make_cells(budgets: Sequence[int] = (8, 32, 128), seeds: Sequence[int] = (1, 2, 3), failed: bool = True,
               tests: Sequence[str] = (), selected: bool = False) -> list[Cell]:
    """Done cells for every strategy x budget x seed (plus one failed finetune cell when ``failed``).

    ``tests`` names the test sets each done cell stores; ``selected`` marks the neural cells'
    eval split as the one best-checkpoint restore selected on.
    """
    rng = np.random.default_rng(0)
    cells = []
    for strategy, (base, gain, params, per_label) in STRATEGIES.items():
        for budget in budgets:
            for seed in seeds:
                axes = {"strategy": strategy, "data.budget": budget, "training.seed": seed}
                config = {"strategy": {"name": strategy}, "data": {"budget": budget, "path": "train.csv"},
                          "training": {"seed": seed, "epochs": 3}, "model": {"name": "all-minilm-l6-v2"}}
                accuracy = float(np.clip(base + gain * math.log2(budget) + 0.02 * rng.standard_normal(), 0, 1))
                cell = Cell(cell_id(config), axes, config, status="done", train_seconds=per_label * budget * 3 + 0.5,
                            eval_seconds=1.5, peak_rss_mb=900.0, trainable_parameters=params, total_parameters=22_700_000,
                            run_dir=f"runs/{strategy}-{budget}-{seed}",
                            command=f"transferkit train --strategy {strategy} --budget {budget} --seed {seed}")
                cell.metrics = _with_splits(_metrics(accuracy, cell), cell, tests, selected)
                cell.history = [] if strategy == "tfidf" else _history(rng, accuracy, 20 * budget // 4 + 100)
                cells.append(cell)
    if failed:
        config = {"strategy": {"name": "finetune"}, "data": {"budget": 999}, "training": {"seed": 1}}
        cells.append(Cell(cell_id(config), {"strategy": "finetune", "data.budget": 999, "training.seed": 1}, config,
                          status="failed", error="RuntimeError: CUDA out of memory <oops> | retry",
                          command="transferkit train --strategy finetune --budget 999 --seed 1"))
    return cells


def make_results(directory: str, **kwargs: Any) -> list[Cell]:
    """Write :func:`make_cells` into a results store at ``directory`` and return the cells."""
    store = ResultsStore(directory)
    cells = make_cells(**kwargs)
    for cell in cells:
        store.add(cell)
    return cells
