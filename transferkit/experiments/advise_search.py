"""The search behind ``advise``: arms, their runs, and successive halving inside a wall-clock limit.

Successive halving (Jamieson & Talwalkar 2016, "Non-stochastic best arm identification and hyperparameter
optimization"): rung ``r`` trains its ``n_r`` surviving arms on a label budget ``b_r`` that grows by η per rung,
scores each on the same held-out data, and keeps the best ``⌈n_r / η⌉``.  Each arm-run is an ordinary transferkit
run under ``<output>/runs/rung{r}-{strategy}-{model}``; one whose ``metrics.json`` exists is read back, not
retrained, so an interrupted search resumes where it stopped.

The time limit is kept by estimating each arm-run's cost before starting it (:meth:`Search.estimate`) and stopping
when the elapsed time plus that estimate would pass the limit.  The cost model is first order: a run's seconds grow
with its training examples and, across models, with the encoder's size ``layers × hidden`` (:func:`compute_size`;
measured, fine-tuning on 1,000 SST-2 sentences: about 2× the seconds from MiniLM-L6, 6 × 384, to e5-small, 12 × 384,
and 2× again to mpnet-base, 12 × 768, although a layer's matrix products grow as ``hidden²``: small models use the
CPU less well, and loading and scoring do not grow at all; a 250k-row vocabulary costs memory, not time).  Rung 0 runs the arms cheapest first (no source model, then the smaller models), so each
strategy's cost is measured on a small model before it is predicted for a larger one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from transferkit.core.errors import UserError
from transferkit.experiments import run
from transferkit.experiments.api import make_config
from transferkit.experiments.embedding_cache import EmbeddingCache

logger = logging.getLogger("transferkit")


@dataclass(frozen=True)
class Arm:
    """One candidate answer: a strategy, on a source model (None for a strategy that reads none)."""

    strategy: str
    model: str | None

    @property
    def label(self) -> str:
        return self.strategy if self.model is None else f"{self.strategy} on {self.model}"

    def run_name(self, rung: int) -> str:
        """``rung{r}-{strategy}-{model}``; a path or hub id becomes its last part plus a short hash (unique)."""
        if self.model is None:
            return f"rung{rung}-{self.strategy}"
        base = os.path.basename(os.path.normpath(self.model))
        slug = re.sub(r"[^A-Za-z0-9._@-]+", "_", base)
        if slug != self.model:
            slug += "-" + hashlib.sha1(self.model.encode()).hexdigest()[:6]
        return f"rung{rung}-{self.strategy}-{slug}"


@dataclass
class ArmRun:
    """An arm's run at one rung: its held-out score (None: the run failed) and cost (train + eval seconds, as the
    run measured and stored them)."""

    arm: Arm
    rung: int
    budget: int | None
    run: str
    score: float | None
    ci: list[float] | None
    seconds: float
    train_size: int
    reused: bool
    error: str | None = None

    def record(self) -> dict[str, Any]:
        return {"arm": self.arm.label, "strategy": self.arm.strategy, "model": self.arm.model, "rung": self.rung,
                "budget": self.budget, "score": self.score, "ci": self.ci, "seconds": round(self.seconds, 3),
                "train_size": self.train_size, "reused": self.reused, "run": self.run, "error": self.error}


@dataclass
class SearchPlan:
    """Everything fixed before the search starts."""

    config: Callable[[Arm, int | None, str], dict[str, Any]]
    """The run config dict of an arm at a budget, written to a run directory."""
    budgets: list[int | None]
    examples: list[int]
    """Training examples each rung's runs see (for the cost estimate)."""
    metric: str
    eta: int
    runs_dir: str
    limit_seconds: float
    started: float
    cache_dir: str | None = None
    sizes: dict[str | None, float] | None = None
    """Each model's :func:`compute_size` (None: no source model); a model missing here counts as the probe's size."""

    def size(self, model: str | None) -> float | None:
        return (self.sizes or {}).get(model)


def compute_size(layers: int, hidden_size: int) -> float:
    """Relative cost of a run on a transformer encoder: ``layers × hidden`` (see the module docstring).

    >>> compute_size(12, 768) / compute_size(6, 384)   # mpnet-base vs MiniLM-L6
    4.0
    """
    return float(layers * hidden_size)


def rung0_order(arms: list[Arm], sizes: dict[str | None, float]) -> list[Arm]:
    """Cheapest first: arms that read no source model, then by model size (unknown sizes last), each model's
    strategies in the given order.

    >>> a = [Arm("finetune", "big"), Arm("lora", "big"), Arm("finetune", "small"), Arm("tfidf", None)]
    >>> [arm.label for arm in rung0_order(a, {"big": 8.0, "small": 1.0})]
    ['tfidf', 'finetune on small', 'finetune on big', 'lora on big']
    """
    def key(item: tuple[int, Arm]) -> tuple[float, int]:
        index, arm = item
        return (-1.0 if arm.model is None else sizes.get(arm.model, math.inf), index)

    return [arm for _, arm in sorted(enumerate(arms), key=key)]


def finished(run_dir: str) -> bool:
    return os.path.isfile(os.path.join(run_dir, "metrics.json"))


class Search:
    """Runs (or reads back) arm-runs and halves the arms rung by rung, inside the time limit."""

    def __init__(self, plan: SearchPlan, bar: Any) -> None:
        self.plan, self.bar = plan, bar
        self.cache = EmbeddingCache(plan.cache_dir)
        self.cut_at: dict[str, Any] | None = None
        self.skipped: list[dict[str, Any]] = []
        """Rung-0 arms not started because their estimated cost did not fit in the time left (cheaper ones after
        them still run: rung 0 is ordered cheapest first by model, not by strategy)."""
        self._last: dict[Arm, ArmRun] = {}
        self._done: dict[tuple[Arm, int], ArmRun] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.plan.started

    def run_dir(self, arm: Arm, rung: int) -> str:
        return os.path.join(self.plan.runs_dir, arm.run_name(rung))

    def carried(self, arm: Arm, rung: int) -> bool:
        """The rung's budget equals the previous one's (small data): the arm's run would repeat, so it is carried."""
        return rung > 0 and self.plan.budgets[rung] == self.plan.budgets[rung - 1] and arm in self._last

    def run_arm(self, arm: Arm, rung: int) -> ArmRun:
        """The arm's run at ``rung``: read back when finished before, carried from the previous rung when the budget
        did not grow, else trained now (a failure is recorded, not raised: one bad arm does not end the search).
        Asked again (the calibration probe is rung 0's first run), it returns the same result."""
        if (arm, rung) in self._done:
            return self._done[arm, rung]
        budget = self.plan.budgets[rung]
        if self.carried(arm, rung):  # ``_last`` keeps the run it repeats: the next rung's estimate scales that cost
            previous = self._last[arm]
            result = ArmRun(arm, rung, budget, previous.run, previous.score, previous.ci, 0.0, previous.train_size,
                            True, previous.error)
        else:
            result = self._last[arm] = self._train(arm, rung, budget)
        self._done[arm, rung] = result
        return result

    def _train(self, arm: Arm, rung: int, budget: int | None) -> ArmRun:
        run_dir = self.run_dir(arm, rung)
        reused = finished(run_dir)
        if reused:
            _check_reusable(run_dir, self.plan.config(arm, budget, run_dir))
            metrics = _read_json(os.path.join(run_dir, "metrics.json"))
        else:
            try:
                metrics = run.train(make_config(self.plan.config(arm, budget, run_dir)), cache=self.cache).metrics
            except Exception as exc:  # noqa: BLE001 - the search goes on without this arm
                error = " ".join(f"{type(exc).__name__}: {exc}".split())
                logger.warning("advise: %s at rung %d failed: %s", arm.label, rung, error)
                return ArmRun(arm, rung, budget, run_dir, None, None, 0.0, 0, False, error)
        held_out = metrics["eval"]
        ci = (held_out.get("ci95") or {}).get(self.plan.metric)
        return ArmRun(arm, rung, budget, run_dir, float(held_out[self.plan.metric]), list(ci) if ci else None,
                      float(metrics["train_seconds"]) + float(metrics["eval_seconds"]), int(metrics["train_size"]),
                      reused)

    def estimate(self, arm: Arm, rung: int, rung_so_far: list[ArmRun], probe: ArmRun) -> float:
        """Expected seconds of the arm's run at ``rung``: 0 when it is on disk or carried; later rungs: the arm's
        previous run scaled by the growth of its training examples (cost ∝ examples: an over-estimate, since loading
        and scoring do not grow); rung 0: :meth:`rung0_estimate`."""
        if (arm, rung) in self._done or self.carried(arm, rung) or finished(self.run_dir(arm, rung)):
            return 0.0
        if rung == 0:
            return self.rung0_estimate(arm, rung_so_far if probe in rung_so_far else [*rung_so_far, probe])
        previous = self._last[arm]
        return previous.seconds * self.plan.examples[rung] / max(previous.train_size, 1)

    def rung0_estimate(self, arm: Arm, measured: list[ArmRun]) -> float:
        """The same strategy's measured rung-0 run scaled by model size (the largest such), else the mean of the
        same model's runs, else the probe scaled by model size; an arm without a source model, the mean of such runs
        (else 0: it loads no encoder)."""
        ok = [result for result in measured if result.error is None]
        if arm.model is None:
            same = [result.seconds for result in ok if result.arm.model is None]
            return sum(same) / len(same) if same else 0.0
        scaled = [self._scaled(result, arm.model) for result in ok
                  if result.arm.strategy == arm.strategy and result.arm.model is not None]
        if scaled:
            return max(scaled)
        same = [result.seconds for result in ok if result.arm.model == arm.model]
        if same:
            return sum(same) / len(same)
        return max([self._scaled(result, arm.model) for result in ok if result.arm.model is not None] or [0.0])

    def _scaled(self, result: ArmRun, model: str) -> float:
        mine, theirs = self.plan.size(model), self.plan.size(result.arm.model)
        return result.seconds * (mine / theirs if mine and theirs else 1.0)

    def halve(self, arms: list[Arm], probe: ArmRun) -> tuple[list[list[ArmRun]], list[dict[str, Any]]]:
        """Successive halving from rung 0; returns every rung's runs and the pruned arms (with why).  Stops early,
        setting ``cut_at``, when the next arm-run would pass the time limit."""
        rungs: list[list[ArmRun]] = []
        pruned: list[dict[str, Any]] = []
        alive = list(arms)
        for rung in range(len(self.plan.budgets)):
            results = self._run_rung(alive, rung, probe)
            rungs.append(results)
            if rung == 0:
                pruned += self.skipped
            if self.cut_at is not None or rung == len(self.plan.budgets) - 1:
                break
            alive, out = survivors(results, self.plan.eta, self.plan.metric)
            pruned += out
        return rungs, pruned

    def _run_rung(self, alive: list[Arm], rung: int, probe: ArmRun) -> list[ArmRun]:
        results: list[ArmRun] = []
        for arm in alive:
            left = self.plan.limit_seconds - self.elapsed()
            self.bar.set_postfix(rung=f"{rung}/{len(self.plan.budgets) - 1}", left=f"{max(left, 0) / 60:.1f} min")
            expected = self.estimate(arm, rung, results, probe)
            if expected > left and rung == 0 and results:  # skip it: a cheaper arm after it may still fit
                self.skipped.append({"arm": arm.label, "strategy": arm.strategy, "model": arm.model, "rung": 0,
                                     "rank": None, "of": None, "score": None,
                                     "reason": f"not started: expected {expected:.0f} s, {left:.0f} s left"})
                continue
            if expected > left and rung > 0:
                self.cut_at = {"rung": rung, "arm": arm.label, "expected_seconds": round(expected, 1),
                               "left_seconds": round(left, 1)}
                return results
            results.append(self.run_arm(arm, rung))
            self.bar.update(1)
        return results


def ranked(results: list[ArmRun]) -> list[ArmRun]:
    """Best first: higher held-out score, then the cheaper run; failed runs last."""
    return sorted(results, key=lambda r: (r.score is None, -(r.score or 0.0), r.seconds))


def survivors(results: list[ArmRun], eta: int, metric: str) -> tuple[list[Arm], list[dict[str, Any]]]:
    """The best ``⌈n / η⌉`` arms of a complete rung, and a record of each pruned arm saying why."""
    order = ranked(results)
    keep = math.ceil(len(order) / eta)
    pruned = []
    for rank, result in enumerate(order[keep:], keep + 1):
        why = (f"failed: {result.error}" if result.error else
               f"held-out {metric} {result.score:.4f} ranked {rank} of {len(order)}; the rung keeps the top {keep} "
               f"(⌈{len(order)}/{eta}⌉)")
        pruned.append({"arm": result.arm.label, "strategy": result.arm.strategy, "model": result.arm.model,
                       "rung": result.rung, "rank": rank, "of": len(order), "score": result.score, "reason": why})
    return [result.arm for result in order[:keep]], pruned


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _check_reusable(run_dir: str, planned: dict[str, Any]) -> None:
    """A finished run is reused only when it is the run the search would train now (same data, budget, strategy):
    another search's leftovers in the same ``--output`` are refused, not silently mixed in."""
    with open(os.path.join(run_dir, "config.yaml"), encoding="utf-8") as handle:
        saved = yaml.safe_load(handle) or {}
    data, planned_data = saved.get("data", {}), planned["data"]
    same = (saved.get("strategy", {}).get("name") == planned["strategy"]
            and all(data.get(key) == planned_data.get(key) for key in ("train", "budget", "eval_fraction", "split_seed",
                                                                         "budget_seed")))
    if not same:
        raise UserError(f"advise: {run_dir} holds a run of another search (other data, budget or strategy); "
                        "choose a new --output or remove it")
