"""A search's figures: the optimisation history and the parameter importances, from stored results.

Rows written by ``transferkit tune`` carry a ``tune`` record in their metrics (study, trial number, metric, direction,
eval value, state, parameters and their Optuna distributions).  The history plots every complete trial's value by
trial number, pruned trials as crosses (their value where training stopped), and the best so far.  Importances are
Optuna's fANOVA (Hutter, Hoos & Leyton-Brown 2014, "An Efficient Approach for Assessing Hyperparameter Importance";
``FanovaImportanceEvaluator`` with a fixed seed): the share of the objective's variance each parameter explains, on
the study in ``<results>/study.db`` when it is there, else on a study rebuilt from the rows.  Grids have no such
records, and their reports are unchanged.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

from transferkit.core.errors import UserError
from transferkit.core.results import Cell
from transferkit.reporting.plots import _figure, _png

TUNE_KEY = "tune"
"""Key of a trial's record in its row's metrics (study, trial number, metric, direction, value, state, params,
distributions); ``experiments.tune_trial`` writes it."""
STUDY_DB = "study.db"
"""The default study storage's file in a study's directory."""


def trial_records(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """The tune records of ``cells`` (complete and pruned trials), by trial number."""
    records = [c.metrics[TUNE_KEY] for c in cells if isinstance((c.metrics or {}).get(TUNE_KEY), dict)]
    return sorted(records, key=lambda r: r["trial"])


def history_plot(records: Sequence[dict[str, Any]]) -> bytes:
    """Each trial's eval value by trial number (pruned: crosses) and the best complete value so far."""
    complete = [r for r in records if r["state"] == "complete"]
    if not complete:
        raise UserError("no complete trial to plot")
    pick = max if complete[0]["direction"] == "maximize" else min
    fig = _figure(6.4, 3.6, layout="constrained")
    ax = fig.add_subplot()
    ax.scatter([r["trial"] for r in complete], [r["value"] for r in complete], color="#1f77b4", label="complete")
    pruned = [r for r in records if r["state"] == "pruned"]
    if pruned:
        ax.scatter([r["trial"] for r in pruned], [r["value"] for r in pruned], color="#7f7f7f", marker="x",
                   label="pruned (where it stopped)")
    best, steps = None, []
    for record in complete:
        best = record["value"] if best is None else pick(best, record["value"])
        steps.append((record["trial"], best))
    ax.step([t for t, _ in steps], [v for _, v in steps], where="post", color="#d62728", label="best so far")
    ax.set_xlabel("trial")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(f"{complete[0]['metric']} (eval)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def _study_from_rows(records: Sequence[dict[str, Any]]) -> Any:
    """An in-memory study holding the rows' complete trials (parameters, distributions, values)."""
    import optuna
    from optuna.distributions import json_to_distribution

    study = optuna.create_study(direction=records[0]["direction"])
    for record in (r for r in records if r["state"] == "complete"):
        distributions = {k: json_to_distribution(v) for k, v in record["distributions"].items()}
        study.add_trial(optuna.trial.create_trial(params=record["params"], distributions=distributions,
                                                  value=record["value"]))
    return study


def _study(results_dir: str, records: Sequence[dict[str, Any]]) -> Any:
    """The study in ``<results_dir>/study.db`` when it is there, else one rebuilt from the rows."""
    import optuna

    path = os.path.join(results_dir, STUDY_DB)
    if os.path.isfile(path):
        with contextlib.suppress(KeyError):  # no such study there: use the rows
            return optuna.load_study(study_name=records[0]["study"], storage=f"sqlite:///{os.path.abspath(path)}")
    return _study_from_rows(records)


def importance_plot(results_dir: str, records: Sequence[dict[str, Any]]) -> tuple[bytes, dict[str, float]]:
    """A bar chart of fANOVA parameter importances (and the values); needs two complete trials and a varied
    parameter."""
    try:
        import optuna
    except ImportError:
        raise UserError("parameter importances need Optuna: pip install 'transferkit[tune]'") from None
    if sum(r["state"] == "complete" for r in records) < 2:
        raise UserError("importances need at least two complete trials")
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no "study created in memory" lines in a report's output
    try:
        importances = optuna.importance.get_param_importances(_study(results_dir, records), evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"no parameter importances: {exc}") from None
    finally:
        optuna.logging.set_verbosity(verbosity)
    names = list(importances)[::-1]  # most important on top
    fig = _figure(6.4, 0.5 + 0.4 * len(names), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(names, [importances[n] for n in names], color="#1f77b4")
    ax.set_xlabel(f"importance for {records[0]['metric']} (fANOVA, share of variance)")
    ax.set_xlim(0, 1)
    return _png(fig), dict(importances)


def tuning_figures(cells: Sequence[Cell], results_dir: str) -> list[tuple[str, str, bytes]]:
    """``(file stem, title, png)`` of the search's figures; none for a grid, or where the data cannot draw one."""
    records = trial_records(cells)
    if not records:
        return []
    figures = []
    study = records[0]["study"]
    with contextlib.suppress(UserError):
        figures.append(("optimisation_history", f"Optimisation history of study {study} (eval split)",
                        history_plot(records)))
    with contextlib.suppress(UserError):
        png, importances = importance_plot(results_dir, records)
        values = ", ".join(f"{k} {v:.2f}" for k, v in importances.items())
        figures.append(("parameter_importances", f"Parameter importances ({values})", png))
    return figures

