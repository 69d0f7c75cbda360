"""One trial of a search: a normal run directory ``<output>/trial-NNNN`` and a row in the grid's results store.

The objective suggests the trial's values (TPE, Bergstra et al. 2011, through Optuna), trains the spec's base config
with them through ``experiments.run.train`` (the same composition root as ``transferkit train``) and returns the
run's eval metric.  Pruning plugs into the run context's run-level callbacks, which every resumable training stage's
Trainer calls after each per-epoch evaluation: :class:`PruneOnEval` reports the tuned metric to the trial and, when
Optuna's pruner (the median stopping rule, Golovin et al. 2017) says so, stops training at the end of that epoch.
The run then finishes normally (best checkpoint, evaluation, run directory) and its row is stored as ``pruned``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from transferkit.core.contracts import Callback, TrainState
from transferkit.core.errors import UserError
from transferkit.core.results import Cell, ResultsStore
from transferkit.experiments import run
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.experiments.grid import reproduce_command
from transferkit.experiments.grid_results import COST_COLUMNS, with_task_info
from transferkit.experiments.tune_spec import TuneSpec
from transferkit.reporting.tuning import TUNE_KEY

MAX_FAILURES_IN_A_ROW = 3


def trial_name(number: int) -> str:
    """The run directory and row id of trial ``number``: ``trial-0007``."""
    return f"trial-{number:04d}"


class TrialFailed(Exception):
    """A trial's run raised; its row is ``failed`` and the study carries on (Optuna marks the trial FAIL)."""


class SurplusTrial(Exception):
    """Other processes' trials already fill the study's total: this trial does not run (marked FAIL, no row)."""


class PruneOnEval(Callback):
    """Report ``metric`` after every per-epoch evaluation; stop training when the trial's pruner says so.

    Evaluations without ``metric`` (a masked-LM stage's held-out loss) are not reported.  ``pruned_epoch`` is the
    1-based epoch after which training stopped, None while the trial runs on.
    """

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.reports = 0
        self.pruned_epoch: int | None = None

    def on_evaluate(self, state: TrainState, model: Any, metrics: dict[str, Any]) -> None:
        value = metrics.get(self.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or self.pruned_epoch is not None:
            return
        self.trial.report(float(value), self.reports)  # step = the trial's n-th report, across its stages
        self.reports += 1
        if self.trial.should_prune():
            self.pruned_epoch = state.epoch + 1
            state.should_stop = True


def eval_value(metrics: dict[str, Any], metric: str, name: str) -> float:
    """The tuned metric on the eval split; a metric the run does not report is a mistake in the spec."""
    evaluated = metrics.get("eval") or {}
    value = evaluated.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        present = ", ".join(k for k, v in evaluated.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        raise UserError(f"metric '{metric}' is not among {name}'s eval metrics ({present}); set metric to one of them")
    return float(value)


@dataclass
class Objective:
    """Optuna's objective: one trial = one run; the row and the trial's user attributes say what happened."""

    spec: TuneSpec
    output: str
    study_name: str
    total: int
    prune: bool = True
    cache: EmbeddingCache = field(default_factory=EmbeddingCache)
    failures_in_a_row: int = 0
    fatal: UserError | None = None

    def __call__(self, trial: Any) -> float:
        trials = trial.study.get_trials(deepcopy=False)
        if self._surplus(trial, trials):
            trial.set_user_attr("surplus", True)
            trial.study.stop()
            raise SurplusTrial(trial_name(trial.number))
        params = {key: param.suggest(trial, key) for key, param in self.spec.search.items()}
        name = trial_name(trial.number)
        config = self.spec.trial_config(params, os.path.join(os.path.abspath(self.output), name))
        store = ResultsStore(self.output)
        store.add(Cell(name, params, config.to_dict()))
        store.start(name)
        self._mark_retried(store, next(t for t in trials if t.number == trial.number), name)
        trial.set_user_attr("run_dir", str(config.output))
        pruning = PruneOnEval(trial, self.spec.metric)
        result = self._train(store, trial, name, config, [pruning] if self.prune else [])
        try:
            value = eval_value(result.metrics, self.spec.metric, name)
        except UserError as exc:
            self._record(store, name, config, result, None, "failed")
            raise self._stop(trial, exc) from None
        state = "complete" if pruning.pruned_epoch is None else "pruned"
        self._record(store, name, config, result, self._trial_record(trial, params, value, state), state)
        self.failures_in_a_row = 0
        if pruning.pruned_epoch is None:
            return value
        import optuna

        trial.set_user_attr("pruned_epoch", pruning.pruned_epoch)
        trial.set_user_attr("pruned_value", value)
        raise optuna.TrialPruned(f"{name}: {self.spec.metric} below the median after epoch {pruning.pruned_epoch}")

    def _surplus(self, trial: Any, trials: list[Any]) -> bool:
        """Trials numbered before this one (finished or running, in any process) already make the total, so this
        one would overshoot it (``MaxTrialsCallback`` only stops a process after its own trial ends)."""
        import optuna

        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)
        return sum(t.number < trial.number and t.state in states for t in trials) >= self.total

    def _mark_retried(self, store: ResultsStore, frozen: Any, name: str) -> None:
        """A retry of a trial whose process died (heartbeat lost): the dead trial's row says so."""
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        history = RetryHeartbeatStaleTrialCallback.retry_history(frozen)  # the last is the trial right before
        if history:
            store.update(trial_name(history[-1]), status="failed", finished_at=time.time(),
                         error=f"its process died mid-trial (heartbeat lost); retried with the same parameters as {name}")

    def _train(self, store: ResultsStore, trial: Any, name: str, config: Any, callbacks: list[Callback]) -> Any:
        shutil.rmtree(str(config.output), ignore_errors=True)  # a number is never reused, but be safe
        try:
            return run.train(config, cache=self.cache, callbacks=callbacks)
        except Exception as exc:  # noqa: BLE001 - a failed trial is recorded; the study decides whether to go on
            error = " ".join(f"{type(exc).__name__}: {exc}".split())
            store.update(name, status="failed", error=error, finished_at=time.time())
            trial.set_user_attr("error", error)
            self.failures_in_a_row += 1
            if isinstance(exc, UserError):
                raise self._stop(trial, UserError(f"{name}: {error.removeprefix('UserError: ')}")) from None
            if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                raise self._stop(trial, UserError(f"{self.failures_in_a_row} trials in a row failed; the last, "
                                                  f"{name}: {error}")) from None
            raise TrialFailed(error) from None

    def _stop(self, trial: Any, error: UserError) -> TrialFailed:
        """A mistake no other trial would avoid: stop the study; ``tune`` raises ``error`` once it has stopped."""
        self.fatal = error
        trial.set_user_attr("error", str(error))
        trial.study.stop()
        return TrialFailed(str(error))

    def _trial_record(self, trial: Any, params: dict[str, Any], value: float, state: str) -> dict[str, Any]:
        from optuna.distributions import distribution_to_json

        return {"study": self.study_name, "trial": trial.number, "metric": self.spec.metric,
                "direction": self.spec.direction, "value": value, "state": state, "params": params,
                "distributions": {k: distribution_to_json(d) for k, d in trial.distributions.items()}}

    def _record(self, store: ResultsStore, name: str, config: Any, result: Any, record: dict[str, Any] | None,
                state: str) -> None:
        metrics = with_task_info(result.metrics, config)
        if record is not None:
            metrics[TUNE_KEY] = record
        status = {"complete": "done"}.get(state, state)
        store.update(name, status=status, error=None if status != "failed" else f"no eval {self.spec.metric}",
                     metrics=metrics, history=result.history, run_dir=result.output,
                     command=reproduce_command(result.output), finished_at=time.time(),
                     **{k: result.metrics.get(k) for k in COST_COLUMNS})
