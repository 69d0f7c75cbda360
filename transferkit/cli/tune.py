"""``transferkit tune``: a hyperparameter search on Optuna (see ``experiments.tune``)."""

from __future__ import annotations

from typing import Annotated

import typer


def tune(
    spec: Annotated[str, typer.Argument(help="search spec YAML: base (a run config), metric, direction, search")],
    output: Annotated[str, typer.Option("--output", "-o", help="study directory: a run directory per trial, "
                                                              "results.sqlite, best.json")],
    trials: Annotated[int, typer.Option(help="finished trials (complete + pruned) of the whole study, counted "
                                             "over every process sharing it")],
    storage: Annotated[str | None, typer.Option(
        help="Optuna RDB storage URL shared by every process of the study, e.g. postgresql://host/db "
             "(default: sqlite:///OUTPUT/study.db)")] = None,
    study: Annotated[str | None, typer.Option(help="study name (default: the spec file's name)")] = None,
    timeout: Annotated[float | None, typer.Option(help="start no new trial after this many seconds")] = None,
    seed: Annotated[int, typer.Option(help="TPE sampler seed")] = 0,
    heartbeat: Annotated[int, typer.Option(
        help="seconds between a running trial's heartbeats; a trial silent for twice this long (its process "
             "died) is retried with the same parameters")] = 60,
    prune: Annotated[bool, typer.Option("--prune/--no-prune", help="stop trials whose per-epoch eval metric is "
                                                                   "below the median (MedianPruner)")] = True,
) -> None:
    """Search hyperparameters of a run config: each trial a run directory under OUTPUT and a results row.

    Re-running the same command continues the study; several processes (or machines, with a shared --storage)
    running it share one study.  `transferkit report OUTPUT` adds the optimisation history and parameter importances.
    """
    from transferkit.experiments.tune import params_text
    from transferkit.experiments.tune import tune as run_tune

    result = run_tune(spec, output, trials=trials, storage=storage, study=study, timeout=timeout, seed=seed,
                      heartbeat=heartbeat, prune=prune)
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
    typer.echo(f"study: {counts or 'no trials'}; results in {result.output}")
    if result.best is None:
        typer.echo("no trial has completed yet")
        return
    best = result.best
    typer.echo(f"best: {best['trial']} {best['metric']} {best['value']:.4f} ({params_text(best['params'])})")
    typer.echo(f"run directory: {best['run_dir']}")
    typer.echo(f"written to {result.output}/best.json")
