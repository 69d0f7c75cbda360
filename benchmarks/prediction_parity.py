"""Prediction parity: does a refactor leave trained models and their predictions unchanged?

    python benchmarks/prediction_parity.py run --out /work/parity/before --repo SRC [--suite small|reference|all]
                                               [--runs NAME ...] [--shared ../shared/data] [--threads 1]
    python benchmarks/prediction_parity.py compare /work/parity/before /work/parity/after

``run`` trains runs with the code in ``--repo`` (default: this script's repository), each through the
command line only: ``python -m transferkit.cli.main`` in a subprocess whose working directory is ``--repo``
and whose ``PYTHONPATH`` starts with it (the run stops if ``transferkit`` is imported from anywhere else), so
this one script drives a checkout before and one after a refactor (keep "before" in a git worktree:
``git worktree add /work/parity/base-src HEAD``). ``--shared`` defaults to this script's ``../shared/data``.
The runs (defined in ``benchmarks/parity_runs.py``):

* suite ``small`` (the default; 11-12 minutes on 1 thread): one small run per registered strategy that
  trains a model, MiniLM-L6 unless the strategy needs another (``word_vectors``: GloVe 6B 50d). SST-2 (300
  training / 200 eval sentences, 64 tokens, 1 epoch): ``tfidf``, ``word_vectors``, ``feature_extraction``,
  ``finetune``, ``scratch``, ``lora``, ``bitfit``, ``tapt`` (MLM stage: 1 epoch, at most 8 steps),
  ``protonet``, ``contrastive`` (8 labels per class; its own 256 tokens, 1 epoch, batch 16), ``distill``
  (teacher: this invocation's ``finetune``, trained first even when only ``--runs distill`` is asked for),
  ``multitask`` (+ a CoNLL task of 300 sentences, also predicted: ``multitask--ner``). Amazon books -> dvd
  (300 / 200 book reviews, 300 unlabelled dvd reviews): ``dapt``, ``udalm`` (tiny MLM stage as ``tapt``;
  within one invocation ``udalm`` reuses ``dapt``'s adapted encoder from the cache, as a grid would),
  ``dann``, ``coral``, ``mmd``, ``pseudo_label``. ``ner_finetune`` (CoNLL-2003, 500 sentences),
  ``qa_finetune`` (SQuAD, 300 questions, 192 tokens, stride 64), ``xsum_bert2bert``
  (``examples/xsum_bert2bert.yaml``: 96 documents, 12 steps, 96/24 tokens, beam 2). Learning rates,
  ``eval_every_epoch`` etc. are mostly left to the strategy, so the resolution of defaults is covered too.
* suite ``reference``: the original four (``examples/sst2_{finetune,feature_extraction,lora}.yaml`` and a
  CoNLL ``finetune`` on 2,000 sentences; minutes each). ``all`` = both. ``--runs A B`` picks runs by name.

Each run predicts a fixed small input written to ``DIR/inputs`` (the first 500 SST-2 rows; 200 dvd reviews
not among the unlabelled 300; the first 200 ``eng.testa`` sentences; 60 SQuAD questions of the last article;
the last 12 XSum documents; the reference runs: 2,000 SST-2 rows, all of ``eng.testa``). ``DIR`` receives
``runs/NAME``, ``pred/NAME[--TASK].jsonl``, ``metrics/NAME.json``, ``history/NAME.json``,
``configs/NAME.yaml``, ``logs/NAME.log``, ``timings.json`` and ``environment.json``. A failing run is
reported and the others go on (exit status 1).

For honest parity every invocation has its own ``TRANSFERKIT_CACHE`` (``DIR/cache``: embeddings, teacher
logits and continued-pretraining checkpoints are never reused from another side), and every subprocess gets
``PYTHONHASHSEED=0`` and ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = ``--threads`` (default 1). Both sides must
use the same thread count: 2 threads instead of 1 moves probabilities by up to 3e-6 and protonet's logged
loss by 1.4e-6 (``compare`` warns when the counts differ); and on a 2-core machine that also runs tests, 2
threads per process were 3-4x slower than 1. With this, two invocations of the same commit give identical
predictions, metrics, histories, configs and model weights.

``compare`` checks every run of either directory (one present on one side only fails): every field of every
prediction record exactly, except floats (class probabilities, QA scores) within 1e-4 (so labels, NER tags and
entities, QA answer text and offsets, summaries exact); ``metrics.json`` (eval, test, per-task metrics,
steps, parameter counts ...) and ``history.json`` (per-step losses, per-epoch eval) with numbers within 1e-6;
``config.yaml`` (fully resolved) as text. Keys naming timings, memory or the machine are left out, and each
side's ``DIR`` reads as the same path. It prints one row per prediction file and whether the saved model
files are identical (weights byte for byte, JSON as the metrics; informational), and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_runs import RUNS, SUITES, with_dependencies, write_inputs  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBABILITY_TOLERANCE = 1e-4
METRIC_TOLERANCE = 1e-6
VOLATILE = re.compile(r"seconds|_s$|rss|^machine$|per_second|throughput|wall")  # keys left out of compare


def subprocess_env(repo: str, out: str, threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0",
                "TRANSFERKIT_CACHE": os.path.join(out, "cache"), "OMP_NUM_THREADS": str(threads),
                "MKL_NUM_THREADS": str(threads),
                "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)})
    return env


def cli(repo: str, env: dict[str, str], arguments: list[str], log_path: str) -> tuple[str, float]:
    """Run ``transferkit ARGUMENTS`` from ``repo``; stderr goes to ``log_path``. Returns (stdout, seconds)."""
    command = [sys.executable, "-m", "transferkit.cli.main", *arguments]
    started = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        completed = subprocess.run(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        log.write(completed.stdout)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"exit {completed.returncode} after {seconds:.0f} s: transferkit {' '.join(arguments)}; "
                           f"see {log_path}")
    return completed.stdout, seconds


def record_environment(repo: str, out: str, env: dict[str, str], threads: int) -> dict:
    """Which ``transferkit`` the subprocesses import (from ``repo``), and the repository's commit."""
    probe = subprocess.run([sys.executable, "-c", "import transferkit, torch; print(transferkit.__file__); "
                            "print(torch.get_num_threads()); print(torch.__version__)"],
                           cwd=repo, env=env, capture_output=True, text=True, check=True)
    module, torch_threads, torch_version = probe.stdout.split()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                           capture_output=True, text=True).stdout.strip()
    environment = {"out": out, "repo": repo, "transferkit": module, "commit": commit, "dirty": bool(dirty),
                   "python": sys.executable, "threads": threads, "torch_threads": int(torch_threads),
                   "torch": torch_version, "cache": env["TRANSFERKIT_CACHE"]}
    with open(os.path.join(out, "environment.json"), "w", encoding="utf-8") as handle:
        json.dump(environment, handle, indent=2)
    print(f"transferkit imported from {module} (commit {commit[:10]}{', dirty' if dirty else ''}); "
          f"torch {torch_version}, {torch_threads} threads; cache {env['TRANSFERKIT_CACHE']}")
    if not os.path.realpath(module).startswith(os.path.realpath(repo) + os.sep):
        raise SystemExit(f"the subprocesses import transferkit from {module}, not from --repo {repo}")
    return environment


def train_and_predict(name: str, repo: str, env: dict[str, str], out: str, shared: str,
                      inputs: dict[str, str]) -> dict:
    """One run: train, predict its fixed inputs, copy metrics/history/config. Returns its timings."""
    run = RUNS[name]
    run_dir = os.path.join(out, "runs", name)
    log_path = os.path.join(out, "logs", f"{name}.log")
    if os.path.exists(run_dir):
        raise SystemExit(f"{run_dir} already exists: choose an empty --out or delete it")
    shutil.rmtree(run_dir + ".partial", ignore_errors=True)
    places = {"shared": shared, "inputs": os.path.join(out, "inputs"), "runs": os.path.join(out, "runs")}
    train_args = ["train", *[a.format(**places) for a in run.args], "--output", run_dir]
    print(f"[{name}] training ...", flush=True)
    stdout, train_wall = cli(repo, env, train_args, log_path)
    summary = json.loads(stdout.strip().splitlines()[-1])
    predict_wall = 0.0
    for suffix, key, extra in run.predictions:
        prediction = os.path.join(out, "pred", f"{name}--{suffix}.jsonl" if suffix else f"{name}.jsonl")
        predict_wall += cli(repo, env, ["predict", run_dir, "--input", inputs[key], "--output", prediction, *extra],
                            log_path)[1]
    for source, folder, extension in (("metrics.json", "metrics", "json"), ("history.json", "history", "json"),
                                      ("config.yaml", "configs", "yaml")):
        if os.path.exists(os.path.join(run_dir, source)):
            shutil.copyfile(os.path.join(run_dir, source), os.path.join(out, folder, f"{name}.{extension}"))
    timing = {"run": name, "kind": run.kind, "train_wall_s": round(train_wall, 1),
              "train_seconds": summary.get("train_seconds"), "predict_wall_s": round(predict_wall, 1),
              "eval": summary.get("eval", {})}
    print(f"[{name}] train {train_wall:.0f} s wall (train loop {summary.get('train_seconds')} s), "
          f"predict {predict_wall:.0f} s; eval {json.dumps(summary.get('eval', {}))}", flush=True)
    return timing


def command_run(args: argparse.Namespace) -> int:
    """Train and predict every selected run (and the runs they need); write DIR/timings.json."""
    repo = os.path.abspath(args.repo)
    out = os.path.abspath(args.out)
    shared = os.path.abspath(args.shared) if args.shared else os.path.normpath(os.path.join(REPO, "../shared/data"))
    for folder in ("runs", "pred", "metrics", "history", "configs", "logs", "cache"):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    env = subprocess_env(repo, out, args.threads)
    record_environment(repo, out, env, args.threads)
    inputs = write_inputs(shared, os.path.join(out, "inputs"))
    timings, failures = [], []
    for name in with_dependencies(args.runs or SUITES[args.suite]):
        if any(need in failures for need in RUNS[name].needs):
            failures.append(name)
            print(f"[{name}] skipped: a run it needs failed", flush=True)
            continue
        try:
            timings.append(train_and_predict(name, repo, env, out, shared, inputs))
        except RuntimeError as error:
            failures.append(name)
            print(f"[{name}] FAILED: {error}", flush=True)
        with open(os.path.join(out, "timings.json"), "w", encoding="utf-8") as handle:
            json.dump({"runs": timings, "failed": failures}, handle, indent=2)
    print(f"\n{'run':<24}{'kind':<16}{'train wall s':>13}{'train loop s':>13}{'predict s':>10}")
    for row in timings:
        print(f"{row['run']:<24}{row['kind']:<16}{row['train_wall_s']:>13}{row['train_seconds']!s:>13}"
              f"{row['predict_wall_s']:>10}")
    total = sum(row["train_wall_s"] + row["predict_wall_s"] for row in timings)
    print(f"total {total:.0f} s" + (f"; FAILED: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def differences(a, b, tolerance: float, where: str = "") -> tuple[list[str], float]:
    """(paths whose non-float values differ or whose floats differ by more than ``tolerance``, max |float diff|).
    Keys matching VOLATILE are skipped; ints are exact; inf equals inf of the same sign."""
    if isinstance(a, dict) and isinstance(b, dict):
        found, largest = [], 0.0
        for key in sorted(set(a) | set(b), key=str):
            if VOLATILE.search(str(key)):
                continue
            if key not in a or key not in b:
                found.append(f"{where}.{key} (only in {'A' if key in a else 'B'})")
                continue
            sub, diff = differences(a[key], b[key], tolerance, f"{where}.{key}")
            found, largest = found + sub, max(largest, diff)
        return found, largest
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where} (length {len(a)} vs {len(b)})"], 0.0
        found, largest = [], 0.0
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            sub, diff = differences(x, y, tolerance, f"{where}[{i}]")
            found, largest = found + sub, max(largest, diff)
        return found, largest
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    if numbers and (isinstance(a, float) or isinstance(b, float)):
        same = a == b or (math.isnan(a) and math.isnan(b))
        diff = 0.0 if same else abs(a - b)
        return ([] if diff <= tolerance else [f"{where} ({a!r} vs {b!r})"]), (0.0 if math.isnan(diff) else diff)
    return ([] if a == b else [f"{where} ({str(a)[:40]!r} vs {str(b)[:40]!r})"]), 0.0


def compare_predictions(records_a: list[dict], records_b: list[dict]) -> dict:
    """Share of identical records (all non-float fields equal, floats within 1e-4) and max |float diff|."""
    if len(records_a) != len(records_b):
        return {"rows": f"{len(records_a)}/{len(records_b)}", "identical": 0.0, "max_diff": None, "ok": False}
    same, largest = 0, 0.0
    for a, b in zip(records_a, records_b, strict=True):
        found, diff = differences(a, b, PROBABILITY_TOLERANCE)
        same += not found
        largest = max(largest, diff)
    return {"rows": len(records_a), "identical": same / len(records_a) if records_a else 1.0, "max_diff": largest,
            "ok": same == len(records_a)}


def _roots(directory: str) -> list[str]:
    """The spellings of a side's DIR in its files: where ``run`` wrote it (environment.json) and where it is now."""
    recorded = None
    if os.path.exists(os.path.join(directory, "environment.json")):
        with open(os.path.join(directory, "environment.json"), encoding="utf-8") as handle:
            environment = json.load(handle)
        recorded = environment.get("out") or os.path.dirname(environment.get("cache", ""))
    roots = {r for r in (recorded, os.path.realpath(directory), os.path.abspath(directory)) if r}
    return sorted(roots, key=len, reverse=True)


def _load(path: str, roots: list[str]):
    """A json (or yaml, as text) file with every spelling of its side's DIR replaced by 'DIR'; None if missing."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    for root in roots:
        text = text.replace(root, "DIR")
    return text if path.endswith(".yaml") else json.loads(text)


def _first_line_difference(a: str | None, b: str | None) -> list[str]:
    if a == b:
        return []
    lines_a, lines_b = (a or "").splitlines(), (b or "").splitlines()
    for i, (x, y) in enumerate(itertools.zip_longest(lines_a, lines_b, fillvalue="<none>")):
        if x != y:
            return [f"line {i + 1}: {x.strip()!r} vs {y.strip()!r}"]
    return ["differs"]


def model_files_identical(dir_a: str, dir_b: str, name: str, roots: dict[str, list[str]]) -> bool | None:
    """Whether runs/NAME/model holds the same files on both sides: byte-identical, except ``.json`` files compared
    as metrics are (DIR normalised, timings left out). None when either side has no model directory."""
    def contents(directory: str) -> dict[str, object] | None:
        folder = os.path.join(directory, "runs", name, "model")
        if not os.path.isdir(folder):
            return None
        found: dict[str, object] = {}
        for base, _, files in os.walk(folder):
            for file in files:
                path = os.path.join(base, file)
                if file.endswith(".json"):
                    found[os.path.relpath(path, folder)] = _load(path, roots[directory])
                else:
                    with open(path, "rb") as handle:
                        found[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
        return found

    a, b = contents(dir_a), contents(dir_b)
    return None if a is None or b is None else not differences(a, b, METRIC_TOLERANCE)[0]


def _format(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def command_compare(args: argparse.Namespace) -> int:
    """One row per run present in either directory; 1 if anything differs or a run is missing on one side."""
    def runs(directory: str) -> set[str]:
        folder = os.path.join(directory, "metrics")
        files = os.listdir(folder) if os.path.isdir(folder) else []
        return {f[: -len(".json")] for f in files if f.endswith(".json")}

    dir_a, dir_b = args.dir_a, args.dir_b
    names_a, names_b = runs(dir_a), runs(dir_b)
    roots = {d: _roots(d) for d in (dir_a, dir_b)}
    environments = [_load(os.path.join(d, "environment.json"), roots[d]) or {} for d in (dir_a, dir_b)]
    for key in ("threads", "torch", "python"):
        if environments[0].get(key) != environments[1].get(key):
            print(f"warning: {key} differs: {environments[0].get(key)} vs {environments[1].get(key)}")
    print(f"A: {dir_a} (commit {str(environments[0].get('commit'))[:10]})\n"
          f"B: {dir_b} (commit {str(environments[1].get('commit'))[:10]})")
    header = (f"{'run':<28}{'rows':>7}{'identical':>10}{'max |d|':>9}  {'metrics':<9}{'history':<9}{'config':<8}"
              f"{'model files':<13}result")
    print(header)
    print("-" * len(header))
    failed, notes = False, []
    for name in sorted(names_a | names_b):
        if name not in names_a or name not in names_b:
            failed = True
            print(f"{name:<28}only in {'A' if name in names_a else 'B'}{'':>36}MISSING")
            continue
        pred_files = sorted((f for f in os.listdir(os.path.join(dir_a, "pred"))
                             if f == f"{name}.jsonl" or f.startswith(f"{name}--")), key=lambda f: ("--" in f, f))
        checks = {}
        for kind, folder, file in (("metrics", "metrics", f"{name}.json"), ("history", "history", f"{name}.json"),
                                   ("config", "configs", f"{name}.yaml")):
            a, b = (_load(os.path.join(d, folder, file), roots[d]) for d in (dir_a, dir_b))
            found = _first_line_difference(a, b) if kind == "config" else differences(a, b, METRIC_TOLERANCE)[0]
            checks[kind] = not found
            notes += [f"{name} {kind}: {item}" for item in found[:5]]
        for file in pred_files or [f"{name}.jsonl"]:
            paths = [os.path.join(d, "pred", file) for d in (dir_a, dir_b)]
            if not all(os.path.exists(p) for p in paths):
                row = {"rows": "-", "identical": 0.0, "max_diff": None, "ok": False}
                notes.append(f"{file}: missing on one side")
            else:
                row = compare_predictions(read_jsonl(paths[0]), read_jsonl(paths[1]))
            identical = model_files_identical(dir_a, dir_b, name, roots)
            ok = row["ok"] and all(checks.values())
            failed |= not ok
            print(f"{file[: -len('.jsonl')]:<28}{row['rows']!s:>7}{row['identical']:>10.4f}"
                  f"{_format(row['max_diff']):>9}  "
                  + "".join(f"{'same' if checks[k] else 'DIFF':<{w}}" for k, w in (("metrics", 9), ("history", 9),
                                                                                  ("config", 8)))
                  + f"{'-' if identical is None else 'identical' if identical else 'differ':<13}"
                  + ("same" if ok else "DIFFERENT"))
    for note in notes:
        print(f"  {note}")
    print(f"\n{'FAIL: runs differ' if failed else 'OK: identical predictions, metrics, histories and configs'} "
          f"(prediction floats within {PROBABILITY_TOLERANCE:g}, metrics within {METRIC_TOLERANCE:g})")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the runs and predict the fixed inputs")
    run.add_argument("--out", required=True, help="directory to write (runs/, pred/, metrics/, logs/ ...)")
    run.add_argument("--repo", default=REPO, help="repository whose code is tested (working directory, PYTHONPATH)")
    run.add_argument("--shared", default=None, help="shared data directory (default: this script's ../shared/data)")
    run.add_argument("--suite", choices=list(SUITES), default="small", help="which runs (default: small)")
    run.add_argument("--runs", nargs="+", choices=list(RUNS), help="these runs instead of a suite (+ what they need)")
    run.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of every subprocess (same on both sides)")
    compare = commands.add_parser("compare", help="compare two `run` directories")
    compare.add_argument("dir_a")
    compare.add_argument("dir_b")
    args = parser.parse_args(argv)
    return command_run(args) if args.command == "run" else command_compare(args)


if __name__ == "__main__":
    sys.exit(main())
