"""``transferkit select``: which source model for my data (in seconds, before any fine-tuning)."""

from __future__ import annotations

from typing import Annotated, Any

import typer


def select(
    train_file: Annotated[str, typer.Option("--train", help="labelled data file")],
    models: Annotated[str, typer.Option(
        "--models", help="comma-separated candidates: catalog names, model directories, hub ids (finished runs for "
                         "nce/leep)")],
    estimator: Annotated[str, typer.Option(
        help="logme, hscore, hscore_shrink, knn, linear (features) or nce, leep (runs with a classifier)")] = "logme",
    layers: Annotated[str, typer.Option(help="last, mean (of all layers) or best (the highest-scoring layer)")] = "mean",
    sample: Annotated[int | None, typer.Option(help="score a sample of this many examples (default: all)")] = None,
    task: Annotated[str, typer.Option(help="classification or token_classification")] = "classification",
    text_column: Annotated[str | None, typer.Option(help="text column")] = None,
    text_pair_column: Annotated[str | None, typer.Option(help="second text column (pairs)")] = None,
    label_column: Annotated[str | None, typer.Option(help="label column")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="data format (default: by file)")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="write the records as JSON here")] = None,
    cache_dir: Annotated[str | None, typer.Option(help="feature cache (default: $TRANSFERKIT_CACHE)")] = None,
) -> None:
    """Rank candidate source models on your labelled data with a transferability score (higher = better).

    Features are extracted once per candidate and cached: a second call is instant.
    """
    from transferkit.experiments.select import select as run_select

    data: dict[str, Any] = {key: value for key, value in (
        ("text_column", text_column), ("text_pair_column", text_pair_column), ("label_column", label_column),
        ("format", format_)) if value is not None}
    records = run_select(train_file, models.split(","), estimator, layers, sample, task, data, output, cache_dir)
    typer.echo(ranking_table(records))
    if output:
        typer.echo(f"records written to {output}")


def ranking_table(records: list[dict[str, Any]]) -> str:
    """The ranked candidates as a fixed-width text table."""
    header = f"{'rank':>4}  {'model':<28} {'score':>10}  {'layer':>5}  {'seconds':>8}  {'cached':>6}"
    lines = [header, "-" * len(header)]
    for record in records:
        layer = "mean" if record["layer"] is None else str(record["layer"])
        lines.append(f"{record['rank']:>4}  {record['model']:<28} {record['score']:>10.4f}  {layer:>5}  "
                     f"{record['seconds']:>8.2f}  {'yes' if record['cached'] else 'no':>6}")
    estimator = records[0]["estimator"] if records else "?"
    lines.append(f"estimator {estimator}, layers {records[0]['layers'] if records else '?'}; higher is better")
    return "\n".join(lines)


def advise(
    train_file: Annotated[str, typer.Option("--train", help="labelled data file")],
    minutes: Annotated[float, typer.Option(help="wall-clock limit for the whole search, the shortlist included")],
    output: Annotated[str, typer.Option("--output", "-o", help="directory for the runs, recommendation.json and "
                                                               "report.html (run again to resume)")],
    models: Annotated[str | None, typer.Option(
        help="comma-separated candidate models (default: the catalog's available minilm-l6, multilingual-e5-small, "
             "mpnet-base, minilm-l3)")] = None,
    methods: Annotated[str, typer.Option("--strategies", help="comma-separated strategies to compare")] = (
        "finetune,feature_extraction,lora,contrastive,tfidf"),
    task: Annotated[str, typer.Option(help="task name")] = "classification",
    text_column: Annotated[str | None, typer.Option(help="text column")] = None,
    text_pair_column: Annotated[str | None, typer.Option(help="second text column (pairs)")] = None,
    label_column: Annotated[str | None, typer.Option(help="label column")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="data format (default: by file)")] = None,
    shortlist: Annotated[int, typer.Option(help="models kept after select (LogME)")] = 2,
    eta: Annotated[int, typer.Option(help="successive halving: keep the best 1/eta of the arms per rung")] = 3,
    min_per_class: Annotated[int, typer.Option(help="labels per class of the smallest rung")] = 8,
    holdout: Annotated[float, typer.Option(help="fraction of the data held out to score every arm")] = 0.2,
    seed: Annotated[int, typer.Option(help="seed of the rungs' label samples")] = 0,
    cache_dir: Annotated[str | None, typer.Option(help="feature cache (default: $TRANSFERKIT_CACHE)")] = None,
) -> None:
    """Recommend a model and a strategy for your data within --minutes: select shortlists models, then successive
    halving over strategies x models on growing label budgets, scored on held-out data.

    Writes DIR/recommendation.json (with the `transferkit train` command for all the data) and DIR/report.html.
    """
    from transferkit.experiments.advise import advise as run_advise

    data: dict[str, Any] = {key: value for key, value in (
        ("text_column", text_column), ("text_pair_column", text_pair_column), ("label_column", label_column),
        ("format", format_)) if value is not None}
    pick = run_advise(train_file, minutes, models, methods, task, data, output, shortlist, eta, min_per_class,
                      holdout, seed, cache_dir=cache_dir)
    typer.echo(advice_text(pick))


def advice_text(pick: dict[str, Any]) -> str:
    """The recommendation in a few lines: the arm, its held-out score, the command, where the evidence is."""
    arm = pick["strategy"] if pick["model"] is None else f"{pick['strategy']} on {pick['model']}"
    ci = f" (95% CI {pick['ci'][0]:.4f}-{pick['ci'][1]:.4f})" if pick["ci"] else ""
    budget = "all labels" if pick["budget"] is None else f"{pick['budget']} {pick['budget_unit']}"
    lines = [f"recommendation: {arm}",
             f"held-out {pick['metric']}: {pick['score']:.4f}{ci} at rung {pick['rung']} ({budget})",
             f"train it on all the data:\n  {pick['command']}"]
    if pick["cut_by_time"]:
        rung = pick["cut_at"]["rung"]
        basis = "the rung-0 runs that finished" if rung == 0 else f"rung {rung - 1}, the last complete rung"
        lines.append(f"the time limit cut the search at rung {rung}: the pick is the best of {basis} (more --minutes "
                     "would search further)")
    lines.append(f"report: {pick['report']} ({pick['minutes_used']:.2f} minutes used)")
    return "\n".join(lines)
