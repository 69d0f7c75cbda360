"""A hyperparameter search spec: a base run config, the metric to optimise and a search space of dotted keys.

The spec YAML (``base`` is a run config file, relative to the spec, or an inline mapping)::

    base: sst2_finetune.yaml
    metric: accuracy              # one of the task's report metrics, read on the eval split
    direction: maximize           # or minimize
    search:
      training.learning_rate: {log_uniform: [1.0e-5, 1.0e-3]}
      training.warmup_ratio: {uniform: [0.0, 0.2]}
      strategy.freeze_layers: {int: [0, 4]}
      training.batch_size: {choice: [16, 32]}

Every mistake is a one-line :class:`~transferkit.core.errors.UserError` before any trial: each key is checked by
applying sample values (both bounds, every choice) to the base config through the same dotted-override machinery as
``train --set`` and building the run's components, so the typed config rejects an unknown key or a wrong type.

>>> spec = load_tune_spec("examples/sst2_tune.yaml")                       # doctest: +SKIP
>>> spec.trial_config({"training.learning_rate": 3e-5}, "runs/tune/trial-0000").training.learning_rate  # doctest: +SKIP
3e-05
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from transferkit.core.config import RunConfig, apply_overrides
from transferkit.core.errors import UserError, closest
from transferkit.core.yaml_config import read_yaml_file
from transferkit.experiments import run
from transferkit.experiments.grid_results import task_info

SPEC_KEYS = ("base", "metric", "direction", "search")
DISTRIBUTIONS = ("log_uniform", "uniform", "int", "choice")
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class SearchParam:
    """One dimension of the search space: ``kind`` is one of :data:`DISTRIBUTIONS`; ``values`` is ``(low, high)``
    for a range (inclusive, ``low < high``) or the choices."""

    kind: str
    values: tuple[Any, ...]

    def suggest(self, trial: Any, key: str) -> Any:
        """This dimension's value for an Optuna trial (TPE proposes it; a retried trial gets its original value)."""
        if self.kind == "choice":
            return trial.suggest_categorical(key, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(key, *self.values)
        return trial.suggest_float(key, *self.values, log=self.kind == "log_uniform")

    def samples(self) -> tuple[Any, ...]:
        """The values validation applies: every choice, or both bounds and (for a real range) a value between them,
        so an integer option given a real range fails up front."""
        if self.kind in ("choice", "int"):
            return self.values
        low, high = self.values
        middle = math.sqrt(low * high) if self.kind == "log_uniform" else (low + high) / 2
        if middle.is_integer():  # a real value an integer option refuses
            middle = math.nextafter(middle, high)
        return (low, high, middle)


@dataclass
class TuneSpec:
    """A parsed search spec: the base run config (as a mapping), the metric, its direction and the search space."""

    base: dict[str, Any]
    metric: str
    direction: str = "maximize"
    search: dict[str, SearchParam] = field(default_factory=dict)
    source: str = "tune spec"

    def trial_config(self, params: dict[str, Any], output: str) -> RunConfig:
        """The base config with ``params`` (dotted key -> value) applied and ``output`` set."""
        config = RunConfig.from_dict(copy.deepcopy(self.base), source=f"{self.source}: base")
        for key, value in params.items():
            set_value(config, key, value)
        config.output = output
        return config


def set_value(config: RunConfig, key: str, value: Any) -> RunConfig:
    """Apply ``key=value`` with ``train --set``'s machinery (the value as YAML text, so 1e-5 stays a float)."""
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    return apply_overrides(config, [f"{key}={text}"])


def _number(value: Any, where: str, integer: bool) -> float | int:
    if isinstance(value, str):  # PyYAML reads 1e-5 (no dot) as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where}: bounds must be numbers, got {value!r}")
    if integer:
        if not float(value).is_integer():
            raise UserError(f"{where}: int bounds must be integers, got {value!r}")
        return int(value)
    return float(value)


def parse_param(raw: Any, where: str) -> SearchParam:
    """``{log_uniform: [a, b]} | {uniform: [a, b]} | {int: [a, b]} | {choice: [...]}`` -> :class:`SearchParam`."""
    if not isinstance(raw, dict) or len(raw) != 1:
        raise UserError(f"{where}: expected one distribution, e.g. {{log_uniform: [1.0e-5, 1.0e-3]}}, "
                        f"{{uniform: [a, b]}}, {{int: [a, b]}} or {{choice: [...]}}; got {raw!r}")
    kind, values = next(iter(raw.items()))
    if kind not in DISTRIBUTIONS:
        raise UserError(f"{where}: unknown distribution '{kind}'{closest(str(kind), DISTRIBUTIONS)}; "
                        f"valid: {', '.join(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise UserError(f"{where}: choice needs a non-empty list of values, got {values!r}")
        for value in values:
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise UserError(f"{where}: choice values must be numbers, strings, true/false or null, got {value!r}")
        return SearchParam(kind, tuple(values))
    if not isinstance(values, list) or len(values) != 2:
        raise UserError(f"{where}: {kind} needs [low, high], got {values!r}")
    low, high = (_number(v, f"{where}: {kind}", kind == "int") for v in values)
    if low >= high:
        raise UserError(f"{where}: {kind} range [{values[0]}, {values[1]}] is empty or reversed: "
                        "the first bound must be below the second")
    if kind == "log_uniform" and low <= 0:
        raise UserError(f"{where}: log_uniform bounds must be > 0, got [{values[0]}, {values[1]}]")
    return SearchParam(kind, (low, high))


def _base(raw: Any, spec_path: str) -> dict[str, Any]:
    """The base run config mapping: a file relative to the spec, or an inline mapping."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw:
        raise UserError(f"{spec_path}: 'base' must be a run config file (relative to the spec) or a mapping")
    path = raw if os.path.isabs(raw) else os.path.join(os.path.dirname(os.path.abspath(spec_path)), raw)
    if not os.path.isfile(path):
        raise UserError(f"{spec_path}: base config not found: {path}")
    loaded = read_yaml_file(path, "base config") or {}
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: expected a run config mapping, got {type(loaded).__name__}")
    return loaded


def parse_tune_spec(raw: Any, source: str = "tune spec") -> TuneSpec:
    """Validate a spec mapping into a :class:`TuneSpec` (every key, range and the metric); no trial runs."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping with base, metric, direction and search")
    for key in raw:
        if key not in SPEC_KEYS:
            raise UserError(f"{source}: unknown key '{key}'{closest(str(key), SPEC_KEYS)}; valid: {', '.join(SPEC_KEYS)}")
    for key in ("base", "metric", "search"):
        if key not in raw:
            raise UserError(f"{source}: '{key}' is missing")
    direction = raw.get("direction", "maximize")
    if direction not in DIRECTIONS:
        raise UserError(f"{source}: direction must be maximize or minimize, got {direction!r}")
    search = raw["search"]
    if not isinstance(search, dict) or not search:
        raise UserError(f"{source}: 'search' must be a non-empty mapping of dotted key -> distribution")
    params = {str(key): parse_param(value, f"{source}: search.{key}") for key, value in search.items()}
    spec = TuneSpec(_base(raw["base"], source), str(raw["metric"]), direction, params, source)
    check_spec(spec)
    return spec


def _strip_set(message: str, key: str) -> str:
    """An override error without its ``--set KEY: `` prefix (the spec names the key itself)."""
    return message.removeprefix(f"--set {key}: ")


def check_spec(spec: TuneSpec) -> None:
    """Build the base config and every search key's sample values into run components; check the metric."""
    if "output" in spec.search:
        raise UserError(f"{spec.source}: search.output: tune writes each trial to <output>/trial-NNNN; "
                        "output cannot be searched")
    base = spec.trial_config({}, "trial")
    run.components(base)
    for key, param in spec.search.items():
        for value in param.samples():
            try:
                run.components(spec.trial_config({key: value}, "trial"))
            except UserError as exc:
                raise UserError(f"{spec.source}: search.{key} ({value!r}): {_strip_set(str(exc), key)}") from None
    info = task_info(base.task.name)
    if spec.metric not in info.metrics:
        raise UserError(f"{spec.source}: metric '{spec.metric}' is not a {info.name} metric"
                        f"{closest(spec.metric, info.metrics)}; valid: {', '.join(info.metrics)}")


def load_tune_spec(path: str) -> TuneSpec:
    """Read and validate a search spec YAML (see the module docstring)."""
    return parse_tune_spec(read_yaml_file(path, "tune spec"), source=path)
