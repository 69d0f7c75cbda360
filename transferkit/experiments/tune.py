"""``transferkit tune``: a hyperparameter search over a run config on Optuna, resumable and shared between processes.

The spec (``experiments.tune_spec``) names a base run config, the eval metric and a search space of dotted keys.
Optuna's TPE sampler (Bergstra et al. 2011, seeded) proposes each trial's values; each trial is an ordinary run
directory ``<output>/trial-NNNN`` and a row of the grid's results store (``results.sqlite``), so ``transferkit
report <output>`` reads it like a grid, plus an optimisation history and parameter importances.  Trials are pruned on
their per-epoch eval (``MedianPruner``, the median stopping rule of Golovin et al. 2017, Google Vizier).

Distribution is Optuna's own: the study lives in an RDB storage (``sqlite:///<output>/study.db`` by default;
PostgreSQL or MySQL for several machines); every process started with the same spec, ``--study`` and ``--storage``
joins the study (``load_if_exists``) and ``trials`` is the study's total of finished (complete + pruned) trials over
all of them (``MaxTrialsCallback``, plus a check that no process starts a trial beyond the total).  A running trial
sends a heartbeat; when its process dies, the next trial started in any process marks it failed and retries it with
the same parameters (``RetryHeartbeatStaleTrialCallback``), so re-running the command finishes a killed study.

>>> result = tune("examples/sst2_tune.yaml", "runs/sst2-tune", trials=20)     # doctest: +SKIP
>>> result.best["params"], result.best["run_dir"]                            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from transferkit.core.atomic import write_json_atomic
from transferkit.core.config import build_dataclass, option
from transferkit.core.errors import UserError
from transferkit.core.results import DB_NAME, ResultsStore
from transferkit.experiments.tune_spec import TuneSpec, load_tune_spec, parse_tune_spec
from transferkit.experiments.tune_trial import Objective, SurplusTrial, TrialFailed, trial_name
from transferkit.reporting.tuning import STUDY_DB

STUDY_FILE = "tune.json"
"""Names the study an output directory belongs to, so two studies never mix their trial directories."""


@dataclass
class TuneConfig:
    """How a search runs (the spec says what is searched)."""

    trials: int = option(20, "finished trials (complete + pruned) the study stops at, counted over every process")
    storage: str | None = option(None, "Optuna RDB storage URL every process of the study shares "
                                       "(default: sqlite:///<output>/study.db)")
    study: str | None = option(None, "study name (default: the spec file's name without .yaml)")
    timeout: float | None = option(None, "seconds after which this process starts no new trial")
    seed: int = option(0, "TPE sampler seed; a process joining a study with trials offsets it by their count, so it "
                          "does not repeat the first process's proposals")
    heartbeat: int = option(60, "seconds between a running trial's heartbeats; a trial silent for twice this long "
                                "is marked failed and retried with the same parameters")
    prune: bool = option(True, "stop a trial after an epoch whose eval metric is worse than the median of "
                               "finished trials at that epoch (MedianPruner)")
    prune_startup_trials: int = option(5, "finished trials before any trial is pruned")
    progress: bool = option(True, "print a line per trial on stderr")


@dataclass
class TuneResult:
    """What :func:`tune` returns: the best trial (``best.json``'s content; None until a trial completes) and the
    study's trial counts."""

    output: str
    best: dict[str, Any] | None
    counts: dict[str, int]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UserError("transferkit tune needs Optuna: pip install 'transferkit[tune]'") from None
    return optuna


def _check(config: TuneConfig) -> None:
    if config.trials < 1:
        raise UserError(f"--trials must be >= 1, got {config.trials}")
    if config.timeout is not None and config.timeout <= 0:
        raise UserError(f"--timeout must be > 0 seconds, got {config.timeout}")
    if config.heartbeat < 1:
        raise UserError(f"--heartbeat must be >= 1 second, got {config.heartbeat}")
    if config.prune_startup_trials < 0:
        raise UserError(f"prune_startup_trials must be >= 0, got {config.prune_startup_trials}")


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_storage(url: str, heartbeat: int) -> Any:
    """The study's RDB storage with heartbeats; an unreachable or malformed URL is a one-line error."""
    optuna = _optuna()
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None  # several writers wait
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                                          grace_period=2 * heartbeat, heartbeat_stale_trial_callback=retry)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy, a missing driver, a bad URL: all the user's to fix
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"--storage {_redact(url)}: cannot open the study storage ({type(exc).__name__}: "
                        f"{reason})") from None


def open_study(name: str, storage: Any, direction: str, config: TuneConfig) -> Any:
    """Create the study or join it; the seeded TPE sampler and the median pruner."""
    optuna = _optuna()
    pruner = optuna.pruners.MedianPruner(n_startup_trials=config.prune_startup_trials)
    study = optuna.create_study(study_name=name, storage=storage, direction=direction, pruner=pruner,
                                sampler=optuna.samplers.TPESampler(seed=config.seed), load_if_exists=True)
    if study.direction.name.lower() != direction:
        raise UserError(f"study '{name}' exists with direction {study.direction.name.lower()}, the spec says "
                        f"{direction}: pass another --study")
    joined = len(study.get_trials(deepcopy=False))
    if joined:
        study.sampler = optuna.samplers.TPESampler(seed=config.seed + joined)
    return study


def check_output(output: str, study: str) -> None:
    """``output`` holds one study's trials: refuse a grid's directory or another study's (``tune.json`` names the
    study; :func:`tune` writes it once the storage has opened)."""
    marker = os.path.join(output, STUDY_FILE)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as handle:
            owner = json.load(handle).get("study")
        if owner != study:
            raise UserError(f"{output} holds the trials of study '{owner}': pass --study {owner} to continue it, "
                            "or choose another --output")
    elif os.path.exists(os.path.join(output, DB_NAME)):
        raise UserError(f"{output} holds a grid's results: choose another --output for the study")


def counts(study: Any) -> dict[str, int]:
    """The study's trials by state (surplus trials, which never ran, left out)."""
    result = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    for trial in study.get_trials(deepcopy=False):
        if not trial.user_attrs.get("surplus"):
            key = {"fail": "failed"}.get(trial.state.name.lower(), trial.state.name.lower())
            result[key] = result.get(key, 0) + 1
    return result


def sync_rows(study: Any, store: ResultsStore) -> None:
    """Rows still ``running`` whose trial Optuna marked failed (its process died, or was interrupted): failed."""
    failed = {trial_name(t.number): t for t in study.get_trials(deepcopy=False) if t.state.name == "FAIL"}
    for cell in store.cells(status="running"):
        if cell.cell_id in failed:
            store.update(cell.cell_id, status="failed", error=failed[cell.cell_id].user_attrs.get(
                "error", "its process died or was interrupted mid-trial"))


def write_best(study: Any, output: str, spec: TuneSpec) -> dict[str, Any] | None:
    """The best complete trial, written to ``<output>/best.json`` (atomically); None while no trial completed."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return None
    best = study.best_trial
    record = {"study": study.study_name, "metric": spec.metric, "direction": spec.direction,
              "trial": trial_name(best.number), "value": best.value, "params": best.params,
              "run_dir": best.user_attrs.get("run_dir"), "trials": counts(study)}
    write_json_atomic(os.path.join(output, "best.json"), record)
    return record


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


@dataclass
class Progress:
    """One line per finished trial on stderr: number, parameters, metric, best so far."""

    metric: str
    enabled: bool = True

    def __call__(self, study: Any, trial: Any) -> None:
        if not self.enabled or trial.user_attrs.get("surplus"):
            return
        state = trial.state.name
        if state == "COMPLETE":
            outcome = f"{self.metric} {trial.value:.4f}"
        elif state == "PRUNED":
            outcome = (f"pruned after epoch {trial.user_attrs.get('pruned_epoch')} "
                       f"({self.metric} {trial.user_attrs.get('pruned_value', float('nan')):.4f})")
        else:
            outcome = f"FAILED {trial.user_attrs.get('error', '')}"
        with contextlib.suppress(ValueError):  # no complete trial yet
            outcome += f"; best {study.best_value:.4f} ({trial_name(study.best_trial.number)})"
        print(f"[{trial_name(trial.number)}] {params_text(trial.params)} -> {outcome}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's own per-trial log lines and experimental-feature warnings off: :class:`Progress` reports trials."""
    optuna = _optuna()
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(previous)


def _spec(spec: TuneSpec | dict | str) -> tuple[TuneSpec, str]:
    """The parsed spec and the default study name (the spec file's name)."""
    if isinstance(spec, TuneSpec):
        return spec, "tune"
    if isinstance(spec, dict):
        return parse_tune_spec(spec), "tune"
    return load_tune_spec(spec), os.path.splitext(os.path.basename(spec))[0]


def tune(spec: TuneSpec | dict | str, output: str, **options: Any) -> TuneResult:
    """Run (or join, or continue) the search ``spec`` describes, writing trials under ``output``.

    ``options`` are :class:`TuneConfig`'s fields (``trials``, ``storage``, ``study``, ``timeout``, ``seed``,
    ``heartbeat``, ``prune``, ``prune_startup_trials``, ``progress``).  Every mistake in the spec or the options,
    and an unreachable storage, is a one-line :class:`UserError` before any trial.
    """
    config = build_dataclass(TuneConfig, options, "tune")
    _check(config)
    spec, default_name = _spec(spec)
    optuna = _optuna()
    name = config.study or default_name
    check_output(output, name)
    if config.storage is None:
        os.makedirs(output, exist_ok=True)  # the default storage lives there
    storage_url = config.storage or f"sqlite:///{os.path.abspath(os.path.join(output, STUDY_DB))}"
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    with quiet_optuna():
        study = open_study(name, open_storage(storage_url, config.heartbeat), spec.direction, config)
        write_json_atomic(os.path.join(output, STUDY_FILE), {"study": name})
        store = ResultsStore(output)
        sync_rows(study, store)
        objective = Objective(spec, output, name, config.trials, config.prune)
        if len(study.get_trials(deepcopy=False, states=finished)) < config.trials:
            stop = optuna.study.MaxTrialsCallback(config.trials, states=finished)
            study.optimize(objective, timeout=config.timeout, catch=(TrialFailed, SurplusTrial),
                           callbacks=[stop, Progress(spec.metric, config.progress)])
        sync_rows(study, store)
    if objective.fatal is not None:
        raise objective.fatal
    return TuneResult(os.path.abspath(output), write_best(study, output, spec), counts(study))
