"""Experiment grids: a base run config crossed with axes of values, one stored row per cell.

A grid spec YAML has ``base`` (a run config), ``axes`` (dotted key -> list of values,
crossed in order), optional ``exclude`` rules and optional ``overrides``: settings applied
to the cells whose axis values match, e.g. ``{when: {strategy: word_vectors}, set: {model:
glove-6b-50d, training.learning_rate: 1e-3}}`` (a strategy that needs another model or
learning rate sits in the same grid).  Every cell is validated before any
training; results go to a :class:`~transferkit.core.results.ResultsStore` so a re-run
skips finished cells and retries failed or interrupted ones.  A grid runs one task (any of
them); each cell stores that task's report metrics (see ``experiments.grid_results``).

>>> spec = load_grid("examples/sst2_data_efficiency.yaml")          # doctest: +SKIP
>>> summary = run_grid(spec, "runs/sst2-grid")                       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import shlex
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import yaml

from transferkit.core.config import SECTION_TYPES, ComponentSpec, RunConfig, apply_overrides
from transferkit.core.errors import UserError, closest
from transferkit.core.results import Cell, ResultsStore, cell_id
from transferkit.core.yaml_config import read_yaml_file
from transferkit.experiments import run
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.experiments.grid_ray import RayConfig, ray_map, ray_session
from transferkit.experiments.grid_results import (
    COST_COLUMNS,
    check_one_task,
    primary_text,
    with_task_info,
)

TOP_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in SECTION_TYPES)
COMPONENT_KEYS = ("strategy", "task")
GRID_KEYS = ("base", "axes", "exclude", "overrides")


@dataclass
class GridSpec:
    """A parsed grid: base config mapping, ordered axes and exclude rules."""

    base: dict[str, Any]
    axes: dict[str, list[Any]]
    exclude: list[dict[str, list[Any]]] = field(default_factory=list)
    source: str = "grid"
    overrides: list[tuple[dict[str, list[Any]], dict[str, Any]]] = field(default_factory=list)


@dataclass
class GridSummary:
    """Outcome of :func:`run_grid`: cell counts, failures and embedding-cache counters."""

    done: int
    failed: int
    skipped: int
    failures: list[Cell] = field(default_factory=list)
    embedded: int = 0
    reused: int = 0


def valid_axis_keys() -> list[str]:
    """Axis keys a grid accepts (``strategy.*`` and ``task.*`` take any option name)."""
    keys = list(TOP_KEYS)
    for section, cls in SECTION_TYPES.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    return keys


def check_axis_key(key: Any, source: str) -> str:
    """Return ``key`` if it names a config field, else raise a UserError with a suggestion."""
    text = str(key)
    head, dot, rest = text.partition(".")
    if not dot and head in TOP_KEYS:
        return text
    if head in COMPONENT_KEYS and rest and "." not in rest:
        return text
    if head in SECTION_TYPES and rest in {f.name for f in dataclasses.fields(SECTION_TYPES[head])}:
        return text
    valid = valid_axis_keys()
    hint = closest(text, valid) or f"; valid: {', '.join(TOP_KEYS)}, data.*, training.*, strategy.*, task.*"
    raise UserError(f"{source}: unknown axis key '{text}'{hint}")


def parse_grid(raw: Any, source: str = "grid") -> GridSpec:
    """Validate a grid mapping (``base``, ``axes``, ``exclude``) into a :class:`GridSpec`."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping with 'base' and 'axes', got {type(raw).__name__}")
    for key in raw:
        if key not in GRID_KEYS:
            raise UserError(f"{source}: unknown key '{key}'{closest(str(key), GRID_KEYS)}")
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        raise UserError(f"{source}: 'base' must be a run config mapping")
    RunConfig.from_dict(base, source=f"{source}: base")
    axes_raw = raw.get("axes")
    if not isinstance(axes_raw, dict) or not axes_raw:
        raise UserError(f"{source}: 'axes' must be a non-empty mapping of dotted key -> list of values")
    axes: dict[str, list[Any]] = {}
    for key, values in axes_raw.items():
        name = check_axis_key(key, source)
        if values is None or (isinstance(values, list) and not values):
            raise UserError(f"{source}: axis '{name}' has no values")
        axes[name] = values if isinstance(values, list) else [values]
    overrides = _parse_overrides(raw.get("overrides") or [], axes, source)
    return GridSpec(base, axes, _parse_exclude(raw.get("exclude") or [], axes, source), source, overrides)


def _parse_overrides(rules: Any, axes: dict[str, list[Any]], source: str
                     ) -> list[tuple[dict[str, list[Any]], dict[str, Any]]]:
    """``[{when: {axis: value or [values]}, set: {dotted key: value}}]`` -> [(when, set)]."""
    if not isinstance(rules, list):
        raise UserError(f"{source}: 'overrides' must be a list of {{when: {{axis: value}}, set: {{key: value}}}}")
    parsed = []
    for index, rule in enumerate(rules, 1):
        where = f"{source}: overrides rule {index}"
        if not isinstance(rule, dict) or set(rule) != {"when", "set"}:
            raise UserError(f"{where} must be a mapping with exactly 'when' and 'set'")
        when, settings = rule["when"], rule["set"]
        if not isinstance(when, dict) or not when or not isinstance(settings, dict) or not settings:
            raise UserError(f"{where}: 'when' and 'set' must be non-empty mappings")
        for key in when:
            if key not in axes:
                raise UserError(f"{where}: 'when' names '{key}', which is not an axis{closest(str(key), axes)}")
        for key in settings:
            check_axis_key(key, where)
        parsed.append(({k: v if isinstance(v, list) else [v] for k, v in when.items()}, dict(settings)))
    return parsed

def _parse_exclude(rules: Any, axes: dict[str, list[Any]], source: str) -> list[dict[str, list[Any]]]:
    if not isinstance(rules, list):
        raise UserError(f"{source}: 'exclude' must be a list of mappings {{axis: value or [values]}}")
    parsed = []
    for index, rule in enumerate(rules, 1):
        if not isinstance(rule, dict) or not rule:
            raise UserError(f"{source}: exclude rule {index} must be a non-empty mapping {{axis: value}}")
        for key in rule:
            if key not in axes:
                raise UserError(f"{source}: exclude rule {index} names '{key}', which is not an axis"
                                f"{closest(str(key), axes)}; axes: {', '.join(axes)}")
        parsed.append({k: v if isinstance(v, list) else [v] for k, v in rule.items()})
    return parsed


def load_grid(path: str) -> GridSpec:
    """Read and validate a grid spec YAML; every cell's config is checked up front."""
    spec = parse_grid(read_yaml_file(path, "grid spec"), source=path)
    expand(spec)  # fails on a bad option value or unknown strategy option before any training
    return spec


def _scalar_text(value: Any) -> str:
    """``value`` as YAML text that ``parse_override`` reads back with the same type (1e-4 stays a float)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _matches(value: Any, wanted: list[Any]) -> bool:
    """An axis value matches a rule value; a strategy/task mapping also matches by its name."""
    return value in wanted or (isinstance(value, dict) and value.get("name") in wanted)


def _excluded(axes: dict[str, Any], rules: list[dict[str, list[Any]]]) -> bool:
    return any(all(_matches(axes[key], values) for key, values in rule.items()) for rule in rules)


def _set(config: RunConfig, key: str, value: Any, source: str) -> None:
    if key in COMPONENT_KEYS and isinstance(value, dict):
        setattr(config, key, ComponentSpec.parse(value, source))
    else:
        apply_overrides(config, [f"{key}={_scalar_text(value)}"])


def cell_config(spec: GridSpec, axes: dict[str, Any], output_dir: str) -> RunConfig:
    """Base config + the cell's axis values, with ``output`` = ``<output_dir>/runs/<cell_id>``."""
    config = RunConfig.from_dict(spec.base, source=f"{spec.source}: base")
    label = " ".join(f"{k}={v}" for k, v in axes.items())
    settings = list(axes.items())
    for when, values in spec.overrides:
        if all(_matches(axes[key], wanted) for key, wanted in when.items()):
            settings += list(values.items())
    for key, value in settings:
        try:
            _set(config, key, value, f"{spec.source}: axis {key}")
        except UserError as exc:
            raise UserError(f"{spec.source}: cell {label}: {exc}") from None
    raw = config.to_dict()
    raw.pop("output")
    config.output = os.path.join(os.path.abspath(output_dir), "runs", cell_id(raw))
    return config


def expand(spec: GridSpec, output_dir: str = ".") -> list[tuple[dict[str, Any], RunConfig]]:
    """Every non-excluded cell as (axis values, config), in axis order; each config is validated.

    All cells must run the same task (a ``task`` axis or override that changes it is an error).
    """
    cells: list[tuple[dict[str, Any], RunConfig]] = []
    seen: set[str] = set()
    for values in itertools.product(*spec.axes.values()):
        axes = dict(zip(spec.axes, values, strict=True))
        if _excluded(axes, spec.exclude):
            continue
        config = cell_config(spec, axes, output_dir)
        try:
            run.components(config)
        except UserError as exc:
            label = " ".join(f"{k}={v}" for k, v in axes.items())
            raise UserError(f"{spec.source}: cell {label}: {exc} (use 'exclude' to skip such cells)") from None
        if os.path.basename(config.output) not in seen:
            seen.add(os.path.basename(config.output))
            cells.append((axes, config))
    check_one_task(cells, spec.source)
    return cells


def reproduce_command(run_dir: str) -> str:
    """The CLI command that re-runs a cell from its saved config into a fresh directory."""
    config = os.path.join(run_dir, "config.yaml")
    return f"transferkit train --config {shlex.quote(config)} --output {shlex.quote(run_dir + '-rerun')}"


@dataclass
class CellOutcome:
    """What training one cell gave: ``done`` with the run's metrics, or ``failed`` with a one-line error.

    A plain picklable record, so a cell trained on another machine (a Ray task) hands it back to the driver,
    which alone writes the results store."""

    status: str
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    output: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> CellOutcome:
        """A failed outcome whose error is ``Type: message`` on one line."""
        return cls("failed", error=" ".join(f"{type(exc).__name__}: {exc}".split()))


def train_cell(config: RunConfig, cache: EmbeddingCache) -> CellOutcome:
    """Train one cell into its run directory (a stale attempt there is removed first); never raises."""
    run_dir = str(config.output)
    shutil.rmtree(run_dir, ignore_errors=True)  # a stale (killed or failed) attempt
    shutil.rmtree(run_dir.rstrip("/") + ".partial", ignore_errors=True)
    try:
        result = run.train(config, cache=cache)
    except Exception as exc:  # noqa: BLE001 - one bad cell must not stop the grid
        return CellOutcome.from_exception(exc)
    return CellOutcome("done", metrics=result.metrics, history=result.history, output=result.output)


def record_cell(store: ResultsStore, cid: str, config: RunConfig, outcome: CellOutcome) -> tuple[str, str]:
    """Write a cell's outcome to the store.  Returns (status, short message for the progress line)."""
    if outcome.status != "done":
        store.update(cid, status="failed", error=outcome.error, finished_at=time.time())
        return "failed", str(outcome.error)
    metrics = outcome.metrics
    store.update(cid, status="done", error=None, metrics=with_task_info(metrics, config), history=outcome.history,
                 run_dir=outcome.output, command=reproduce_command(str(outcome.output)), finished_at=time.time(),
                 **{k: metrics.get(k) for k in COST_COLUMNS})
    return "done", primary_text(metrics, config)


def run_cell(store: ResultsStore, cid: str, config: RunConfig, cache: EmbeddingCache) -> tuple[str, str]:
    """Train one cell and record it; any exception marks it failed.  Returns (status, short message)."""
    store.start(cid)
    return record_cell(store, cid, config, train_cell(config, cache))


def _worker(output_dir: str, cid: str, config: RunConfig) -> tuple[str, str]:
    """Process-pool entry point: its own store connection and embedding cache (on-disk shared)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run_cell(ResultsStore(output_dir), cid, config, EmbeddingCache())


def _remote_cell(config: RunConfig) -> CellOutcome:
    """Ray task entry point: train on whichever node Ray chose and hand the outcome back (no store access)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return train_cell(config, EmbeddingCache())


def axis_label(value: Any) -> Any:
    """How a cell's axis value is stored and shown: ``{name: lora, r: 4}`` -> ``lora(r=4)``; scalars as they are."""
    if isinstance(value, dict) and "name" in value:
        options = ", ".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return f"{value['name']}({options})" if options else str(value["name"])
    if isinstance(value, (dict, list)):
        return _scalar_text(value)
    return value


def _label(axes: dict[str, Any]) -> str:
    return " ".join(str(axis_label(v)) if k in TOP_KEYS else f"{k.rsplit('.', 1)[-1]}={axis_label(v)}"
                    for k, v in axes.items())


def _report(progress: bool, index: int, total: int, axes: dict[str, Any], status: str, message: str) -> None:
    if progress:
        text = message if status == "done" else f"FAILED {message}"
        print(f"[{index}/{total}] {_label(axes)} … {text}", file=sys.stderr, flush=True)


def run_grid(spec: GridSpec, output_dir: str, workers: int = 1, progress: bool = True,
             cache: EmbeddingCache | None = None, ray: RayConfig | None = None) -> GridSummary:
    """Run every cell not already done; failures are recorded and the grid carries on.

    Cells run in this process (``workers=1``), in ``workers`` local processes, or as Ray tasks when ``ray`` is
    given (``workers`` is then ignored: ``ray.workers`` sizes it); the results store is the same either way."""
    cells = expand(spec, output_dir)
    store = ResultsStore(output_dir)
    for axes, config in cells:
        labels = {key: axis_label(value) for key, value in axes.items()}
        store.add(Cell(os.path.basename(str(config.output)), labels, config.to_dict()))
    finished = {c.cell_id for c in store.cells(status="done")}
    todo = [(axes, config) for axes, config in cells if os.path.basename(str(config.output)) not in finished]
    skipped = len(cells) - len(todo)
    if progress and skipped:
        print(f"skipping {skipped} finished cell(s) of {len(cells)}", file=sys.stderr, flush=True)
    cache = cache or EmbeddingCache()
    embedded, reused = cache.embedded, cache.reused
    if ray is not None and todo:
        _run_ray(todo, store, ray, progress)
    elif workers > 1 and len(todo) > 1:
        _run_pool(todo, output_dir, workers, progress)
    else:
        for index, (axes, config) in enumerate(todo, 1):
            status, message = run_cell(store, os.path.basename(str(config.output)), config, cache)
            _report(progress, index, len(todo), axes, status, message)
    ids = {os.path.basename(str(config.output)) for _, config in cells}
    rows = [c for c in store.cells() if c.cell_id in ids]
    failures = [c for c in rows if c.status != "done"]
    return GridSummary(done=sum(c.status == "done" for c in rows) - skipped, failed=len(failures),
                       skipped=skipped, failures=failures, embedded=cache.embedded - embedded,
                       reused=cache.reused - reused)


def _run_pool(todo: list[tuple[dict[str, Any], RunConfig]], output_dir: str, workers: int, progress: bool) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_worker, output_dir, os.path.basename(str(c.output)), c): (axes, c)
                   for axes, c in todo}
        for index, future in enumerate(as_completed(futures), 1):
            axes, config = futures[future]
            try:
                status, message = future.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker process
                status, message = "failed", str(CellOutcome.from_exception(exc).error)
                ResultsStore(output_dir).update(os.path.basename(str(config.output)), status="failed",
                                                error=message, finished_at=time.time())
            _report(progress, index, len(todo), axes, status, message)


def _run_ray(todo: list[tuple[dict[str, Any], RunConfig]], store: ResultsStore, config: RayConfig,
             progress: bool) -> None:
    """Each cell a Ray task; this process records every outcome as it arrives (workers never touch the store)."""
    ids = [os.path.basename(str(c.output)) for _, c in todo]
    with ray_session(config) as where:
        if progress:
            print(f"running {len(todo)} cell(s) on {where}", file=sys.stderr, flush=True)
        outcomes = ray_map(_remote_cell, [c for _, c in todo], config, submitted=lambda i: store.start(ids[i]))
        for done_count, (index, value) in enumerate(outcomes, 1):
            outcome = value if isinstance(value, CellOutcome) else CellOutcome.from_exception(value)
            status, message = record_cell(store, ids[index], todo[index][1], outcome)
            _report(progress, done_count, len(todo), todo[index][0], status, message)
