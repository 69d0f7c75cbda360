"""Does ``transferkit advise --minutes 15`` pick an arm as good as the exhaustive grid's best, at a third of its cost?

Protocol, fixed before any result was seen (datasets and splits: ``selection_data.py``; 1,000 train / 200 eval /
500 test examples each):

* datasets: ``sst2``, ``trec``, ``waimai`` (classification, accuracy) and ``conll`` (token classification, entity
  F1); the strategies of a dataset are those of ``advise``'s ``DEFAULT_STRATEGIES`` whose declared ``supports``
  holds its task (for ``conll``: finetune, feature_extraction, lora), its models those of ``DEFAULT_CANDIDATES``
  that the catalog has as available transformers (the same rule as ``advise``);
* exhaustive grid per dataset: every strategy × every model (a strategy that reads no source model, ``tfidf``,
  once), each trained on the whole train file with the strategy's defaults, per-epoch eval on the eval file, seed
  42, scored on the test file (the task's primary metric).  Finetune cells are ``selection.py``'s ground-truth
  runs (``truth_run``: same cache, ``OUT/truth/NAME/MODEL-s42``); the others run under
  ``OUT/grid/NAME/STRATEGY-MODEL-s42`` as ``python -m transferkit.cli.main train --config``, each with a fresh
  feature cache (features computed from scratch; the materialised models are shared).  The grid's best arm is
  the one with the highest test score (an oracle: the strictest reference), its cost the sum of its cells' CPU;
* advise per dataset: ``python -m transferkit.cli.main advise --train TRAIN --minutes 15 --models ...
  --strategies ... --output OUT/advise/NAME`` (the grid's models and strategies, a fresh ``--cache-dir``), from
  scratch in one uninterrupted process (an interrupted one is wiped and started again, so its CPU time is whole);
  then its pick (strategy, model, options) trained on all of the train file with the grid's eval/test files and
  seed: the grid cell itself when the options are the strategy's defaults, else its own run;
* cost: CPU seconds (user + system of the child process, ``RUSAGE_CHILDREN``), each run alone on this machine;
* a dataset passes when the gap ``(best − pick) × 100 ≤ 1`` point and advise's CPU ≤ 1/3 of the grid's (advise's
  search alone; the ratio counting the pick's full-data training is reported beside it); done when ≥ 3 pass.

Every run is cached as JSON beside its run directory: a rerun only does what is missing.  Do not run it beside
``selection.py`` on the same ``--out`` (both would start the same ground-truth runs).

    python benchmarks/advise.py                          # everything (hours on 2 cores)
    python benchmarks/advise.py --datasets sst2 --dry-run   # the planned runs, nothing trained
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from advise_report import MAX_COST_RATIO, MAX_GAP_POINTS, machine_line, report  # noqa: E402
from selection import TRUTH_STRATEGY, data_options, run_child, truth_run  # noqa: E402
from selection_data import prepare  # noqa: E402

SEED = 42
DEFAULT_MINUTES = 15.0


def strategies_for(task: str) -> list[str]:
    """advise's default strategies that declare support for ``task`` (never chosen by name)."""
    from transferkit.experiments.advise import DEFAULT_STRATEGIES
    from transferkit.strategies import STRATEGIES

    return [name for name in DEFAULT_STRATEGIES if task in STRATEGIES.get(name).supports]


def candidate_models() -> list[str]:
    """advise's default candidates that the catalog has as available transformers (advise's own rule)."""
    from transferkit.experiments.advise import DEFAULT_CANDIDATES
    from transferkit.models import available, get_entry

    return [name for name in DEFAULT_CANDIDATES
            if (entry := get_entry(name)) is not None and entry.kind == "transformer" and available(entry)]


def model_cost(model: str) -> float:
    """Layers × hidden of a catalog transformer (advise's cost model), to run the cheap cells first."""
    from transferkit.models import get_entry

    entry = get_entry(model)
    return float(entry.layers * entry.hidden_size) if entry is not None else float("inf")


def grid_arms(strategies: list[str], models: list[str]) -> list[tuple[str, str | None]]:
    from transferkit.strategies import STRATEGIES

    return [(strategy, model) for strategy in strategies
            for model in (models if STRATEGIES.get(strategy).uses_source_model else [None])]


def default_options(strategy: str) -> dict:
    """The strategy's options when none is set, as JSON gives them back (what recommendation.json holds)."""
    from transferkit.core.config import build_dataclass
    from transferkit.strategies import STRATEGIES

    config = build_dataclass(STRATEGIES.get(strategy).Config, {}, "strategy")
    return json.loads(json.dumps(dataclasses.asdict(config)))


def is_truth_cell(strategy: str, model: str | None, options: dict | None) -> bool:
    """A cell that ``selection.py``'s ground truth already is: finetune, default options, a transformer."""
    from transferkit.models import get_entry

    return (options is None and model is not None and strategy == "finetune"
            and TRUTH_STRATEGY[get_entry(model).kind] == "finetune")


def cell_name(strategy: str, model: str | None, options: dict | None) -> str:
    name = strategy if model is None else f"{strategy}-{model}"
    if options is not None:  # options other than the defaults: their own run
        name += "-" + hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}-s{SEED}"


def cell_dir(out: Path, name: str, strategy: str, model: str | None, options: dict | None) -> Path:
    """The cell's run directory; its record is ``DIR.json`` beside it (``.yaml`` its config, ``.log`` its output)."""
    if is_truth_cell(strategy, model, options):
        return out / "truth" / name / f"{model}-s{SEED}"
    return out / "grid" / name / cell_name(strategy, model, options)


def beside(run_dir: Path, suffix: str) -> Path:
    return run_dir.parent / f"{run_dir.name}{suffix}"


@contextlib.contextmanager
def fresh_feature_cache(parent: Path) -> Iterator[None]:
    """``$TRANSFERKIT_CACHE`` of the children: an empty directory (features from scratch) sharing the models."""
    from transferkit.experiments.embedding_cache import default_cache_dir

    models = Path(default_cache_dir()) / "models"
    models.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("TRANSFERKIT_CACHE")
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="features-", dir=parent) as root:
        (Path(root) / "models").symlink_to(models, target_is_directory=True)
        os.environ["TRANSFERKIT_CACHE"] = root
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("TRANSFERKIT_CACHE", None)
            else:
                os.environ["TRANSFERKIT_CACHE"] = previous


def cell_config(run_dir: Path, files: dict, strategy: str, model: str | None, options: dict | None) -> dict:
    config = {"strategy": {"name": strategy, **(options or {})}, "task": {"name": files["task"]},
              "output": str(run_dir),
              "data": {"train": files["train"], "eval": files["eval"], "test": files["test"], **data_options(files)},
              "training": {"seed": SEED, "progress": False}}
    if model is not None:
        config["model"] = model
    return config


def grid_cell(out: Path, name: str, files: dict, strategy: str, model: str | None,
              options: dict | None = None) -> dict:
    """One arm trained on the whole train file, scored on the test file (cached): test metric and CPU seconds."""
    from transferkit.tasks import TASKS

    if is_truth_cell(strategy, model, options):
        return {**truth_run(out, name, files, model, SEED), "options": None}
    run_dir = cell_dir(out, name, strategy, model, options)
    record_file = beside(run_dir, ".json")
    if record_file.is_file():
        return json.loads(record_file.read_text())
    shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished run: its CPU time is lost, so it starts again
    config_file = beside(run_dir, ".yaml")
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(cell_config(run_dir, files, strategy, model, options)))
    command = [sys.executable, "-m", "transferkit.cli.main", "train", "--config", str(config_file)]
    with fresh_feature_cache(out / "grid" / name):
        seconds = run_child(command, beside(run_dir, ".log"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metric = TASKS.get(files["task"]).primary_metric
    record = {"model": model, "strategy": strategy, "options": options, "seed": SEED,
              "test": metrics["test"]["test"][metric], "cpu_seconds": seconds}
    record_file.write_text(json.dumps(record))
    return record


def advise_dir(out: Path, name: str, minutes: float) -> Path:
    return out / "advise" / (name if minutes == DEFAULT_MINUTES else f"{name}-m{minutes:g}")


def advise_command(files: dict, target: Path, minutes: float, models: list[str], strategies: list[str]) -> list[str]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in data_options(files).items()]
    return [sys.executable, "-m", "transferkit.cli.main", "advise", "--train", files["train"], "--task", files["task"],
            "--minutes", f"{minutes:g}", "--models", ",".join(models), "--strategies", ",".join(strategies),
            "--output", str(target), "--cache-dir", str(beside(target, ".cache")), *flags]


PICK_KEYS = ("model", "strategy", "options", "score", "ci", "metric", "rung", "budget", "cut_by_time", "cut_at",
             "minutes_used", "command", "arms")


def run_advise(out: Path, name: str, files: dict, minutes: float, models: list[str], strategies: list[str]) -> dict:
    """advise from scratch in one process (cached once finished): its CPU seconds and recommendation."""
    target = advise_dir(out, name, minutes)
    record_file = beside(target, ".json")
    if record_file.is_file():
        return json.loads(record_file.read_text())
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(beside(target, ".cache"), ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    seconds = run_child(advise_command(files, target, minutes, models, strategies), beside(target, ".log"))
    advice = json.loads((target / "recommendation.json").read_text())
    record = {"minutes": minutes, "cpu_seconds": seconds, "recommendation": {k: advice.get(k) for k in PICK_KEYS}}
    record_file.write_text(json.dumps(record, indent=1))
    return record


def pick_cell(out: Path, name: str, files: dict, advice: dict) -> dict:
    """The pick on all of the train file: its grid cell when its options are the defaults, else its own run."""
    strategy, model = advice["strategy"], advice["model"]
    options = None if advice["options"] == default_options(strategy) else advice["options"]
    record = grid_cell(out, name, files, strategy, model, options)
    return {**record, "default_options": options is None}


def evaluate(out: Path, name: str, files: dict, minutes: float) -> dict:
    """advise, the grid, the pick, and the two criteria of one dataset."""
    from transferkit.tasks import TASKS

    strategies, models = strategies_for(files["task"]), candidate_models()
    advised = run_advise(out, name, files, minutes, models, strategies)  # first: minutes, where the grid takes hours
    cells = [grid_cell(out, name, files, strategy, model) for strategy, model in grid_arms(strategies, models)]
    best = max(cells, key=lambda cell: cell["test"])  # the first of equals, in grid order
    advice = advised["recommendation"]
    pick = pick_cell(out, name, files, advice)
    grid_cpu = sum(cell["cpu_seconds"] for cell in cells)
    gap = round((best["test"] - pick["test"]) * 100, 4)
    ratio = advised["cpu_seconds"] / grid_cpu
    result = {"task": files["task"], "metric": TASKS.get(files["task"]).primary_metric, "strategies": strategies,
              "models": models, "grid": cells, "grid_cpu_seconds": grid_cpu,
              "best": {k: best[k] for k in ("strategy", "model", "test")},
              "advise": {"cpu_seconds": advised["cpu_seconds"], **advice}, "pick": pick, "gap_points": gap,
              "cpu_ratio": ratio, "cpu_ratio_with_final": (advised["cpu_seconds"] + pick["cpu_seconds"]) / grid_cpu,
              "pass_gap": gap <= MAX_GAP_POINTS, "pass_cost": ratio <= MAX_COST_RATIO}
    result["pass"] = result["pass_gap"] and result["pass_cost"]
    return result


def planned_files(out: Path, names: list[str]) -> dict[str, dict]:
    """The datasets' files as ``prepare`` lays them out under OUT, written to a scratch directory only (a dry run
    leaves OUT untouched, even the data files a running benchmark reads)."""
    with tempfile.TemporaryDirectory(prefix="advise-dry-") as scratch:
        datasets = prepare(scratch, names)
    return {name: {key: str(out / "data" / name / Path(value).name) if key in ("train", "eval", "test") else value
                   for key, value in files.items()} for name, files in datasets.items()}


def plan_lines(out: Path, name: str, files: dict, minutes: float) -> tuple[list[str], int]:
    """What a run would do for one dataset, in its order, and how many processes it would start."""
    from transferkit.tasks import TASKS

    strategies, models = strategies_for(files["task"]), candidate_models()
    metric = TASKS.get(files["task"]).primary_metric
    lines = [f"## {name} ({files['task']}, test {metric}): strategies {', '.join(strategies)}; models {', '.join(models)}"]
    target = advise_dir(out, name, minutes)
    advised = beside(target, ".json").is_file()
    command = " ".join(advise_command(files, target, minutes, models, strategies)[1:])
    lines.append(f"  advise {'cached' if advised else 'to run'}: python {command}")
    todo = int(not advised)
    for strategy, model in grid_arms(strategies, models):
        run_dir = cell_dir(out, name, strategy, model, None)
        done = beside(run_dir, ".json").is_file()
        todo += not done
        kind = "truth_run" if is_truth_cell(strategy, model, None) else "train --config"
        lines.append(f"  grid   {cell_name(strategy, model, None):<46} {'cached' if done else 'to run':<7} "
                     f"{kind:<15} {run_dir.relative_to(out)}")
    if advised:
        advice = json.loads(beside(target, ".json").read_text())["recommendation"]
        lines.append(f"  pick   {advice['strategy']} / {advice['model'] or '-'} on all train, seed {SEED} (its grid cell "
                     "when default options)")
    else:
        lines.append(f"  pick   after advise: its strategy/model/options on all train, seed {SEED} (its grid cell when "
                     "default options, else one more run)")
    return lines, todo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/out/selection", help="shared with selection.py's truth runs")
    parser.add_argument("--datasets", default="sst2,trec,waimai,conll")
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="advise's --minutes")
    parser.add_argument("--dry-run", action="store_true", help="print the planned runs (cached or to run); train nothing")
    parser.add_argument("--grid-strategies", default=None,
                        help="run (or read back) only these strategies' grid cells on every dataset, cheapest model "
                             "first, and stop (the verdict needs every cell: a later full run reuses them)")
    parser.add_argument("--advise-only", action="store_true",
                        help="run (or read back) advise on every dataset first, nothing else: its wall-clock limit is "
                             "then kept on a machine running nothing beside it; a later full run reuses the results")
    args = parser.parse_args()
    out, names = Path(args.out).resolve(), args.datasets.split(",")
    if args.dry_run:
        total = 0
        print(machine_line() + "\n")
        for name, files in planned_files(out, names).items():
            lines, todo = plan_lines(out, name, files, args.minutes)
            total += todo
            print("\n".join(lines) + "\n")
        print(f"{total} processes to run (plus one per non-default pick); nothing was trained (--dry-run)")
        return
    if args.grid_strategies:
        wanted = args.grid_strategies.split(",")
        for name, files in prepare(str(out), names).items():
            models = sorted(candidate_models(), key=model_cost)
            for strategy, model in grid_arms([s for s in strategies_for(files["task"]) if s in wanted], models):
                try:
                    cell = grid_cell(out, name, files, strategy, model)
                except SystemExit as exc:
                    cell = {"strategy": strategy, "model": model, "error": str(exc)}
                print(json.dumps({name: cell}), flush=True)
        return
    if args.advise_only:
        for name, files in prepare(str(out), names).items():
            try:
                advised = run_advise(out, name, files, args.minutes, candidate_models(), strategies_for(files["task"]))
            except SystemExit as exc:
                advised = {"error": str(exc)}
            print(json.dumps({name: advised}, default=str)[:800], flush=True)
        return
    summary = {}
    for name, files in prepare(str(out), names).items():
        try:
            summary[name] = evaluate(out, name, files, args.minutes)
        except SystemExit as exc:  # a failed child: report it, go on with the other datasets
            summary[name] = {"error": str(exc)}
        print(json.dumps({name: {k: v for k, v in summary[name].items() if k not in ("grid", "advise", "pick")}}),
              flush=True)
    text, verdict = report(summary, args.minutes)
    (out / "advise_summary.json").write_text(json.dumps({**verdict, "datasets": summary}, indent=2))
    print(text)
    failed = [name for name, result in summary.items() if "error" in result]
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)} (see the logs named above); a rerun resumes")


if __name__ == "__main__":
    main()
