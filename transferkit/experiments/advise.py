"""``advise``: which source model and which strategy for my data, within my time — with the evidence.

1. Shortlist: ``select`` (LogME, You et al. 2021, on the mean of all layers) ranks the candidate models in seconds;
   the best ``shortlist`` go on.
2. Arms: every strategy on every shortlisted model; a strategy that reads no source model
   (``Strategy.uses_source_model`` False, e.g. ``tfidf``) is one arm.
3. Successive halving (Jamieson & Talwalkar 2016, "Non-stochastic best arm identification and hyperparameter
   optimization"; :mod:`~transferkit.experiments.advise_search`) with reduction factor η over ``n`` arms:
   ``R = ⌈log_η n⌉`` rungs after the first; rung ``r`` trains its arms on ``b_r`` labels per class,

       b_R = every training label,   b_r = min(B, max(m, ⌈B / η^(R−r)⌉))  for r < R,

   with ``B`` the smallest class's training count and ``m = min_per_class``, and keeps the best ``⌈n_r / η⌉`` by
   held-out score, so rung ``r`` holds ``⌈n / η^r⌉`` arms and the last one.  Epochs are each strategy's defaults
   (``training.epochs`` is left unset), so what grows per rung is the labels, and with them the steps.
4. Held-out scoring: every arm-run reads ``train`` with ``data.eval_fraction = holdout`` and one fixed split seed, so
   all train on the same ``1 − holdout`` part and are scored on the same held-out part (the task's primary metric
   and its bootstrap CI); rung budgets are drawn with ``data.budget_seed = seed``.
5. Time: ``minutes`` of wall clock for everything, the shortlist included.  Rung 0 runs its arms cheapest first (no
   source model, then the smaller shortlisted model).  Calibration, measured: the shortlist's time plus the first
   model arm's rung-0 run (the probe, on the smallest model, kept as that arm's rung-0 result), extrapolated to every
   arm's rung 0 by the search's cost model (size ``layers × hidden``, :mod:`advise_search`); a limit that cannot hold
   even one more arm-run after the probe is refused up front, saying the minimum; one below rung 0's estimate gives
   a warning.  During the search, an arm-run that would pass the limit (its estimated cost: the same strategy's
   rung-0 run scaled by model size, or the previous rung's measured seconds times the growth of its data) is not
   started.  In rung 0 it is skipped (listed with the pruned arms, "not started") and the cheaper arms after it
   still run, so one expensive arm does not end the search; halving goes on over the arms that ran.  In a later
   rung the search stops there and the best arm of the last complete rung is recommended.  ``cut_by_time`` says
   when either happened.

>>> pick = advise("train.csv", minutes=15, data={"text_column": "sentence"}, output="advice")  # doctest: +SKIP
>>> pick["strategy"], pick["model"], pick["command"]                                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferkit.core.atomic import write_json_atomic
from transferkit.core.config import DataConfig, build_dataclass
from transferkit.core.errors import UserError
from transferkit.evaluation.transferability import estimator
from transferkit.experiments import run
from transferkit.experiments.advise_search import (
    Arm,
    ArmRun,
    Search,
    SearchPlan,
    compute_size,
    finished,
    ranked,
    rung0_order,
)
from transferkit.experiments.api import make_config
from transferkit.experiments.select import check_candidate_model as check_candidate
from transferkit.experiments.select import select
from transferkit.models import available, get_entry
from transferkit.reporting.advice import render_advice
from transferkit.strategies import STRATEGIES
from transferkit.tasks import TASKS

logger = logging.getLogger("transferkit")

DEFAULT_STRATEGIES = ("finetune", "feature_extraction", "lora", "contrastive", "tfidf")
DEFAULT_CANDIDATES = ("minilm-l6", "multilingual-e5-small", "mpnet-base", "minilm-l3")
SET_BY_SEARCH = ("train", "eval", "eval_fraction", "budget", "budget_seed")
"""Data settings the search chooses itself (the held-out split and the rung budgets)."""
DATA_FLAGS = {"text_column": "--text-column", "text_pair_column": "--text-pair-column",
              "label_column": "--label-column", "format": "--format"}
"""``transferkit train`` flags of data settings; any other data setting goes in as ``--set data.KEY=VALUE``."""
PER_CLASS = "labels per class"


@dataclass
class Prepared:
    """What the checks found, before any work: the strategies' options, candidates, budgets, run configs."""

    names: list[str]
    options: dict[str, dict[str, Any]]
    candidates: list[str]
    budgets: list[int | None]
    examples: list[int]
    arm_count: int
    budget_unit: str
    config: Any


def advise(train: str, minutes: float, models: Sequence[str] | str | None = None,
           strategies: Sequence[str] | str = DEFAULT_STRATEGIES, task: str = "classification",
           data: dict[str, Any] | None = None, output: str = "advice", shortlist: int = 2, eta: int = 3,
           min_per_class: int = 8, holdout: float = 0.2, seed: int = 0, progress: bool = True,
           cache_dir: str | None = None) -> dict[str, Any]:
    """Recommend a (model, strategy) for the labelled file ``train`` within ``minutes``; see the module docstring.

    Args:
        models: candidate source models (default: the catalog's available ones of ``DEFAULT_CANDIDATES``).
        strategies: strategy names; each must support ``task``.
        data: data settings as in a run's ``data`` section (columns, format ...), without those the search sets.
        output: directory for ``runs/``, ``select.json``, ``recommendation.json`` and ``report.html``; a second call
            with the same output reuses every finished run.
        shortlist: models kept after ``select``;  eta: the halving factor η;  min_per_class: the smallest rung's
            labels per class;  holdout: the held-out fraction every arm is scored on;  seed: the budgets' sample.

    Returns:
        The recommendation (also written to ``output/recommendation.json``): ``model``, ``strategy``, ``options``,
        ``score`` and ``ci`` (held-out ``metric``), ``command`` (``transferkit train`` on all the data), ``rungs``,
        ``pruned``, ``cut_by_time``, ``minutes_used`` and the evidence behind them.
    """
    started = time.monotonic()
    data = dict(data or {})
    _check_settings(minutes, shortlist, eta, min_per_class, holdout, data)
    prepared = _prepare(train, models, _names(strategies, "--strategies"), task, data, shortlist, eta, min_per_class,
                        holdout, seed)
    records = []
    if prepared.candidates:
        records = select(train, prepared.candidates, task=task, data=data, cache_dir=cache_dir, seed=seed,
                         progress=progress, output=os.path.join(output, "select.json"))
    select_seconds = time.monotonic() - started
    shortlisted = [record["model"] for record in records[:shortlist]]
    sizes = model_sizes(shortlisted)
    arms = rung0_order([Arm(name, model) for name in prepared.names
                        for model in (shortlisted if prepared.options[name]["uses_model"] else [None])], sizes)
    plan = SearchPlan(prepared.config, prepared.budgets, prepared.examples, TASKS.get(task).primary_metric, eta,
                      os.path.join(output, "runs"), minutes * 60, started, cache_dir, sizes)
    from tqdm.auto import tqdm

    total = sum(math.ceil(len(arms) / eta ** rung) for rung in range(len(prepared.budgets)))
    with tqdm(total=total, desc="advise", unit="run", disable=not progress, leave=False) as bar:
        search = Search(plan, bar)
        probe = _calibrate(search, arms, minutes, select_seconds)
        rungs, pruned = search.halve(arms, probe.pop("result"))
    recommendation = _recommendation(search, rungs, pruned, prepared, probe)
    recommendation.update(command=train_command(recommendation, train, task, data, output), shortlist=records,
                          train=os.path.abspath(train), task=task, data=data, minutes=minutes, eta=eta, seed=seed,
                          holdout=holdout, min_per_class=min_per_class, arms=[arm.label for arm in arms],
                          report=os.path.join(output, "report.html"), minutes_used=search.elapsed() / 60)
    write_json_atomic(os.path.join(output, "recommendation.json"), recommendation)
    render_advice(recommendation, recommendation["report"])
    return recommendation


def rung_budgets(arms: int, eta: int, largest: int, smallest: int) -> list[int | None]:
    """Labels per class of each rung (None = every training label): ``R = ⌈log_η arms⌉`` rungs after the first,
    growing by η towards ``largest``, never below ``smallest``.

    >>> rung_budgets(9, 3, 100, 8)
    [12, 34, None]
    >>> rung_budgets(3, 3, 40, 8), rung_budgets(1, 3, 40, 8)
    ([14, None], [None])
    """
    rungs = 0
    while eta ** rungs < arms:  # integer ⌈log_η arms⌉, free of floating-point rounding
        rungs += 1
    return [min(largest, max(smallest, math.ceil(largest / eta ** (rungs - r)))) for r in range(rungs)] + [None]


def _check_settings(minutes: float, shortlist: int, eta: int, min_per_class: int, holdout: float,
                    data: dict[str, Any]) -> None:
    if not minutes > 0:
        raise UserError(f"advise: --minutes must be above 0, got {minutes:g}")
    if shortlist < 1 or eta < 2 or min_per_class < 1:
        raise UserError(f"advise: need --shortlist >= 1, --eta >= 2 and --min-per-class >= 1 (got {shortlist}, {eta}, "
                        f"{min_per_class})")
    if not 0 < holdout < 1:
        raise UserError(f"advise: --holdout must be between 0 and 1 (exclusive), got {holdout:g}")
    taken = sorted(set(data) & set(SET_BY_SEARCH))
    if taken:
        raise UserError(f"advise: data.{taken[0]} is set by the search (held-out split and rung budgets); leave it out")


def _names(value: Sequence[str] | str, flag: str) -> list[str]:
    """A comma-separated string or a sequence, as distinct non-empty names."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(item).strip() for item in items if str(item).strip()]
    if not names:
        raise UserError(f"advise: {flag} needs at least one name")
    if len(set(names)) != len(names):
        raise UserError(f"advise: a name is given twice in {flag}: {', '.join(names)}")
    return names


def _candidates(models: Sequence[str] | str | None) -> list[str]:
    if models is not None:
        return _names(models, "--models")
    names = [name for name in DEFAULT_CANDIDATES
             if (entry := get_entry(name)) is not None and entry.kind == "transformer" and available(entry)]
    if not names:
        raise UserError(f"advise: none of the default candidates ({', '.join(DEFAULT_CANDIDATES)}) is available here; "
                        "name models with --models")
    return names


def _prepare(train: str, models: Sequence[str] | str | None, names: list[str], task: str, data: dict[str, Any],
             shortlist: int, eta: int, min_per_class: int, holdout: float, seed: int) -> Prepared:
    """Every check before any work: strategies (known, support the task, their options), the data (two classes or
    more, enough labels for the smallest rung), every candidate model with every strategy that reads one."""
    task_obj, examples = _training_part(train, task, data, holdout)
    config = functools.partial(_run_config, train, task, data, holdout, seed)
    options, uses_model = {}, []
    for name in names:
        parts = run.components(make_config(config(Arm(name, None), None, "check")))
        options[name] = {"uses_model": STRATEGIES.get(name).uses_source_model, "options": parts.strategy.options()}
        if options[name]["uses_model"]:
            uses_model.append(parts)
    candidates = _candidates(models) if uses_model else []
    needs = estimator("logme").needs
    for model in candidates:
        try:
            check_candidate(model, task_obj, needs)
            for parts in uses_model:
                parts.strategy.check_model(model)
        except UserError as exc:
            raise UserError(f"advise: {str(exc).removeprefix('select: ')}") from None
    arm_count = len(uses_model) * min(shortlist, len(candidates)) + len(names) - len(uses_model)
    largest, per_example = _largest_budget(task_obj, examples, min_per_class, holdout)
    budgets = rung_budgets(arm_count, eta, largest, min_per_class)
    seen = [len(examples) if budget is None else budget * per_example for budget in budgets]
    return Prepared(names, options, candidates, budgets, seen, arm_count, task_obj.budget_unit, config)


def _split_seed(data: dict[str, Any]) -> int:
    return int(data.get("split_seed", DataConfig().split_seed))


def _training_part(train: str, task: str, data: dict[str, Any], holdout: float) -> tuple[Any, Any]:
    """The task (with the file's labels) and the training part every arm shares (``1 − holdout`` of ``train``)."""
    task_cls = TASKS.get(task)
    options = {**data, "train": train, "eval_fraction": holdout, "split_seed": _split_seed(data)}
    splits = task_cls.read_splits(build_dataclass(DataConfig, options, "advise data"), task_cls.Config(), 0)
    if len(splits.labels) < 2:
        raise UserError(f"advise: {train} has a single class; a recommendation needs labelled data of 2 or more")
    return task_cls(task_cls.Config(), splits.labels), splits.train


def _largest_budget(task: Any, examples: Any, min_per_class: int, holdout: float) -> tuple[int, int]:
    """(the largest budget a rung may ask for, training examples per budget unit): per class, the smallest class's
    training count and the number of classes; for tasks whose budget counts examples, their number and 1."""
    if task.budget_unit != PER_CLASS:
        largest, per_unit = len(examples), 1
    else:
        counts = np.bincount(np.asarray(examples.labels, dtype=np.int64), minlength=len(task.labels))
        largest, per_unit = int(counts.min()), len(task.labels)
        if largest < min_per_class:
            name = task.labels[int(counts.argmin())]
            raise UserError(f"advise: class '{name}' keeps {largest} labelled examples for training after holding out "
                            f"{holdout:.0%}; the smallest rung uses --min-per-class {min_per_class}: lower it or add "
                            "labels")
    if largest < min_per_class:
        raise UserError(f"advise: {largest} training examples after holding out {holdout:.0%}; the smallest rung uses "
                        f"--min-per-class {min_per_class}: lower it or add data")
    return largest, per_unit


def _run_config(train: str, task: str, data: dict[str, Any], holdout: float, seed: int, arm: Arm, budget: int | None,
                output: str) -> dict[str, Any]:
    """An arm-run: the shared training part (fixed split), ``budget`` drawn with ``seed``, the strategy's defaults."""
    config: dict[str, Any] = {
        "strategy": arm.strategy, "task": task, "output": output, "training": {"progress": False},
        "data": {**data, "train": train, "eval_fraction": holdout, "split_seed": _split_seed(data), "budget": budget,
                 "budget_seed": seed}}
    if arm.model is not None:
        config["model"] = arm.model
    return config


def model_sizes(models: Sequence[str]) -> dict[str | None, float]:
    """Each catalog transformer's size (``layers × hidden``) for the search's cost model; models outside
    the catalog are left out (the cost model then treats them as the size of the run it scales from)."""
    sizes: dict[str | None, float] = {}
    for model in models:
        entry = get_entry(model)
        if entry is not None and entry.layers > 0:
            sizes[model] = compute_size(entry.layers, entry.hidden_size)
    return sizes


def _calibrate(search: Search, arms: list[Arm], minutes: float, select_seconds: float) -> dict[str, Any]:
    """Measure the first model arm's rung-0 run (the cheapest order puts it on the smallest shortlisted model; kept as
    its result) and estimate rung 0: the time spent so far plus the cost model's estimate (:meth:`Search.rung0_estimate`
    from the probe) of every arm whose rung-0 run is not on disk yet.  A limit that leaves no time for a second
    arm-run (nothing to compare) is refused, naming the minimum; one below rung 0's estimate is warned about, and the
    search compares what fits."""
    probe_arm = next((arm for arm in arms if arm.model is not None), arms[0])
    start = time.monotonic()
    probe = search.run_arm(probe_arm, 0)
    seconds = probe.seconds if probe.reused else time.monotonic() - start
    measured = dataclasses.replace(probe, seconds=seconds)
    pending = [arm for arm in arms if arm != probe_arm and not finished(search.run_dir(arm, 0))]
    estimates = [search.rung0_estimate(arm, [measured]) for arm in pending]
    needed = (search.elapsed() + sum(estimates)) / 60
    least = math.ceil((search.elapsed() + min(estimates, default=0.0)) / 6) / 10
    if pending and least > minutes:
        raise UserError(f"advise: --minutes {minutes:g} is too small: the shortlist and one arm-run took "
                        f"{search.elapsed() / 60:.1f} minutes, leaving no time to compare a second arm; give at least "
                        f"--minutes {least:g} (a whole first rung of {len(arms)} arms needs about {needed:.1f})")
    if needed > minutes:
        logger.warning("advise: a whole first rung of %d arms needs about %.1f minutes; --minutes %g compares the arms "
                       "that fit (cheapest first)", len(arms), needed, minutes)
    return {"arm": probe_arm.label, "seconds": round(seconds, 3), "select_seconds": round(select_seconds, 3),
            "rung0_minutes": round(needed, 3), "result": measured}


def _decision(rungs: list[list[ArmRun]], cut: dict[str, Any] | None) -> list[ArmRun]:
    """The runs the pick is made from: the last rung; when cut by time, the last complete rung (or rung 0's finished
    runs when the cut came inside it); earlier rungs only when every run of those failed."""
    last = len(rungs) - 1
    deciding = last if cut is None else max(last - 1, 0)
    for rung in range(deciding, -1, -1):
        if any(result.error is None for result in rungs[rung]):
            return rungs[rung]
    errors = "; ".join(f"{r.arm.label}: {r.error}" for r in rungs[0][:2])
    raise UserError(f"advise: every arm failed ({errors})")


def _recommendation(search: Search, rungs: list[list[ArmRun]], pruned: list[dict[str, Any]], prepared: Prepared,
                    probe: dict[str, Any]) -> dict[str, Any]:
    best = ranked(_decision(rungs, search.cut_at))[0]
    return {"model": best.arm.model, "strategy": best.arm.strategy,
            "options": prepared.options[best.arm.strategy]["options"], "score": best.score, "ci": best.ci,
            "metric": search.plan.metric, "rung": best.rung, "budget": best.budget, "budget_unit": prepared.budget_unit,
            "run": best.run, "cut_by_time": search.cut_at is not None or bool(search.skipped), "cut_at": search.cut_at,
            "budgets": prepared.budgets, "calibration": probe,
            "rungs": [{"rung": rung, "budget": prepared.budgets[rung], "arms": [r.record() for r in results]}
                      for rung, results in enumerate(rungs)],
            "pruned": pruned}


def train_command(pick: dict[str, Any], train: str, task: str, data: dict[str, Any], output: str) -> str:
    """The ``transferkit train`` command line that trains the pick on all the data (no label budget; the run holds
    out its default eval split for per-epoch evaluation)."""
    words = ["transferkit", "train"]
    if pick["model"] is not None:
        words += ["--model", pick["model"]]
    words += ["--strategy", pick["strategy"], "--task", task, "--train", train]
    for key, value in data.items():
        if key in DATA_FLAGS:
            words += [DATA_FLAGS[key], str(value)]
        elif value is not None:
            words += ["--set", f"data.{key}={_override_text(value)}"]
    return shlex.join([*words, "--output", os.path.join(output, "final")])


def _override_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
