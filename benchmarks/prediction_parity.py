"""Prediction parity: does a refactor leave trained models and their predictions unchanged?

    python benchmarks/prediction_parity.py run --out /work/parity/before [--repo .] [--shared ../shared/data]
    python benchmarks/prediction_parity.py compare /work/parity/before /work/parity/after

``run`` trains four reference runs with the code in ``--repo`` (default: this script's repository),
each through the command line only (``python -m transferkit.cli.main`` in a subprocess whose working
directory is ``--repo``), so the same script drives the code before and after a refactor:

* ``sst2_finetune``, ``sst2_feature_extraction``, ``sst2_lora``: ``examples/sst2_*.yaml`` unchanged
  (the README's figures);
* ``conll_ner``: MiniLM-L6 ``finetune`` on CoNLL-2003 ``eng.train`` (2,000 sentences, 1 epoch, the
  README's lr 1e-4 and max length 128), evaluated on 500 sentences of ``eng.testa``.

Each run then predicts a fixed input (the first 2,000 rows of SST-2 ``train.tsv``; all of ``eng.testa``).
``DIR`` receives ``runs/NAME`` (run directories), ``pred/NAME.jsonl``, ``metrics/NAME.json``,
``logs/NAME.log``, ``timings.json`` and ``environment.json`` (which ``transferkit`` was imported, git commit).

``compare`` checks, for every run present in both directories: classification, the share of identical
predicted labels and the largest absolute difference of a class probability; NER, the share of identical
tag sequences; and it prints the eval metric (accuracy or entity F1) of both sides. Training is seeded and
runs on the same machine, so a behaviour-preserving refactor should reproduce predictions exactly: the exit
status is 1 when any label or tag sequence differs or any probability differs by more than 1e-4.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBABILITY_TOLERANCE = 1e-4
SST2_INPUT_ROWS = 2000

# name -> (kind, training arguments after ``train``; {shared} is the shared data directory)
RUNS: dict[str, tuple[str, list[str]]] = {
    "sst2_finetune": ("classification", ["--config", "examples/sst2_finetune.yaml"]),
    "sst2_feature_extraction": ("classification", ["--config", "examples/sst2_feature_extraction.yaml"]),
    "sst2_lora": ("classification", ["--config", "examples/sst2_lora.yaml"]),
    "conll_ner": ("ner", [
        "--model", "minilm-l6", "--task", "token_classification", "--strategy", "finetune",
        "--train", "{shared}/conll2003_en/eng.train", "--eval", "{shared}/conll2003_en/eng.testa",
        "--set", "data.max_train_examples=2000", "--set", "data.max_eval_examples=500",
        "--set", "training.epochs=1", "--set", "training.learning_rate=1e-4", "--set", "data.max_length=128",
    ]),
}


def cli(repo: str, arguments: list[str], log_path: str) -> tuple[str, float]:
    """Run ``transferkit ARGUMENTS`` from ``repo``; stderr goes to ``log_path``. Returns (stdout, seconds)."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    command = [sys.executable, "-m", "transferkit.cli.main", *arguments]
    started = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        completed = subprocess.run(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        log.write(completed.stdout)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"failed (exit {completed.returncode}) after {seconds:.0f} s: {' '.join(arguments)}; "
                         f"see {log_path}")
    return completed.stdout, seconds


def record_environment(repo: str, out: str) -> dict:
    """Which ``transferkit`` the subprocesses import (from ``repo``), and the repository's commit."""
    probe = subprocess.run([sys.executable, "-c", "import transferkit; print(transferkit.__file__)"],
                           cwd=repo, env=dict(os.environ), capture_output=True, text=True, check=True)
    module = probe.stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                           capture_output=True, text=True).stdout.strip()
    environment = {"repo": repo, "transferkit": module, "commit": commit, "dirty": bool(dirty),
                   "python": sys.executable}
    with open(os.path.join(out, "environment.json"), "w", encoding="utf-8") as handle:
        json.dump(environment, handle, indent=2)
    print(f"transferkit imported from {module} (commit {commit[:10]}{', dirty' if dirty else ''})")
    if not os.path.realpath(module).startswith(os.path.realpath(repo) + os.sep):
        raise SystemExit(f"the subprocesses import transferkit from {module}, not from --repo {repo}; "
                         f"set PYTHONPATH={repo}")
    return environment


def write_sst2_input(shared: str, out: str) -> str:
    """The header and the first SST2_INPUT_ROWS data rows of sst2/train.tsv, as DIR/inputs/sst2_2000.tsv."""
    path = os.path.join(out, "inputs", f"sst2_{SST2_INPUT_ROWS}.tsv")
    with open(os.path.join(shared, "sst2", "train.tsv"), encoding="utf-8") as source:
        lines = [next(source) for _ in range(SST2_INPUT_ROWS + 1)]
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return path


def train_and_predict(name: str, repo: str, out: str, shared: str, input_path: str) -> dict:
    """One run: train, predict the fixed input, copy metrics.json. Returns its timings."""
    kind, arguments = RUNS[name]
    run_dir = os.path.join(out, "runs", name)
    log_path = os.path.join(out, "logs", f"{name}.log")
    if os.path.exists(os.path.join(run_dir, "metrics.json")):
        raise SystemExit(f"{run_dir} already exists: choose an empty --out or delete it")
    shutil.rmtree(run_dir + ".partial", ignore_errors=True)
    train_args = ["train", *[a.format(shared=shared) for a in arguments], "--output", run_dir]
    print(f"[{name}] training ...", flush=True)
    stdout, train_wall = cli(repo, train_args, log_path)
    summary = json.loads(stdout.strip().splitlines()[-1])
    prediction = os.path.join(out, "pred", f"{name}.jsonl")
    _, predict_wall = cli(repo, ["predict", run_dir, "--input", input_path, "--output", prediction], log_path)
    shutil.copyfile(os.path.join(run_dir, "metrics.json"), os.path.join(out, "metrics", f"{name}.json"))
    timing = {"run": name, "kind": kind, "train_wall_s": round(train_wall, 1),
              "train_seconds": summary.get("train_seconds"), "predict_wall_s": round(predict_wall, 1),
              "eval": summary.get("eval", {})}
    print(f"[{name}] train {train_wall:.0f} s wall (train loop {summary.get('train_seconds')} s), "
          f"predict {predict_wall:.0f} s; eval {json.dumps(summary.get('eval', {}))}", flush=True)
    return timing


def command_run(args: argparse.Namespace) -> int:
    """Train and predict every selected run; write DIR/timings.json and print the timings."""
    repo = os.path.abspath(args.repo)
    out = os.path.abspath(args.out)
    shared = os.path.abspath(args.shared) if args.shared else os.path.normpath(os.path.join(repo, "../shared/data"))
    for folder in ("runs", "pred", "metrics", "logs", "inputs"):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    record_environment(repo, out)
    inputs = {"classification": write_sst2_input(shared, out),
              "ner": os.path.join(shared, "conll2003_en", "eng.testa")}
    timings = []
    for name in args.runs:
        timings.append(train_and_predict(name, repo, out, shared, inputs[RUNS[name][0]]))
        with open(os.path.join(out, "timings.json"), "w", encoding="utf-8") as handle:
            json.dump(timings, handle, indent=2)
    print(f"\n{'run':<26}{'train wall s':>14}{'train loop s':>14}{'predict s':>11}")
    for row in timings:
        print(f"{row['run']:<26}{row['train_wall_s']:>14}{row['train_seconds']!s:>14}{row['predict_wall_s']:>11}")
    return 0


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def compare_predictions(records_a: list[dict], records_b: list[dict]) -> dict:
    """Identical share (labels or tag sequences) and max |p_a - p_b| over all rows and classes."""
    if len(records_a) != len(records_b):
        return {"rows": f"{len(records_a)} vs {len(records_b)}", "identical": 0.0, "max_prob_diff": None,
                "ok": False}
    if not records_a:
        return {"rows": 0, "identical": 1.0, "max_prob_diff": None, "ok": True}
    key = "tags" if "tags" in records_a[0] else "label"
    same = sum(a[key] == b[key] for a, b in zip(records_a, records_b, strict=True))
    max_diff = None
    if key == "label":
        max_diff = 0.0
        for a, b in zip(records_a, records_b, strict=True):
            pa, pb = a["probabilities"], b["probabilities"]
            if pa.keys() != pb.keys():
                max_diff = float("inf")
                break
            max_diff = max(max_diff, *(abs(pa[label] - pb[label]) for label in pa))
    ok = same == len(records_a) and (max_diff is None or max_diff <= PROBABILITY_TOLERANCE)
    return {"rows": len(records_a), "identical": same / len(records_a), "max_prob_diff": max_diff, "ok": ok}


def eval_metric(path: str, key: str) -> float | None:
    """One eval metric from a run's metrics.json (None when the file or the key is missing)."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle).get("eval", {}).get(key)


def _format(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def command_compare(args: argparse.Namespace) -> int:
    """Print one row per run present in both directories; 1 if any prediction differs."""
    def names(directory: str) -> set[str]:
        folder = os.path.join(directory, "pred")
        return {f[: -len(".jsonl")] for f in os.listdir(folder) if f.endswith(".jsonl")} if os.path.isdir(folder) else set()

    names_a, names_b = names(args.dir_a), names(args.dir_b)
    common = sorted(names_a & names_b)
    for name in sorted(names_a ^ names_b):
        print(f"note: {name} is only in {args.dir_a if name in names_a else args.dir_b}")
    if not common:
        print("no run present in both directories")
        return 1
    header = f"{'run':<26}{'rows':>7}{'identical':>11}{'max |dp|':>10}{'metric':>10}{'A':>9}{'B':>9}{'B-A':>9}  result"
    print(header)
    print("-" * len(header))
    failed = False
    for name in common:
        records_a = read_jsonl(os.path.join(args.dir_a, "pred", f"{name}.jsonl"))
        row = compare_predictions(records_a, read_jsonl(os.path.join(args.dir_b, "pred", f"{name}.jsonl")))
        metric = "f1" if records_a and "tags" in records_a[0] else "accuracy"  # entity F1 for NER
        value_a, value_b = (eval_metric(os.path.join(d, "metrics", f"{name}.json"), metric)
                            for d in (args.dir_a, args.dir_b))
        delta = None if value_a is None or value_b is None else value_b - value_a
        failed |= not row["ok"]
        print(f"{name:<26}{row['rows']!s:>7}{row['identical']:>11.4f}{_format(row['max_prob_diff']):>10}"
              f"{metric:>10}{_format(value_a):>9}{_format(value_b):>9}{_format(delta):>9}  "
              f"{'same' if row['ok'] else 'DIFFERENT'}")
    print(f"\n{'FAIL: predictions differ' if failed else 'OK: identical predictions'} "
          f"(labels/tags exact, probabilities within {PROBABILITY_TOLERANCE:g})")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the reference runs and predict the fixed inputs")
    run.add_argument("--out", required=True, help="directory to write (runs/, pred/, metrics/, logs/)")
    run.add_argument("--repo", default=REPO, help="repository whose code is tested (working directory)")
    run.add_argument("--shared", default=None, help="shared data directory (default: REPO/../shared/data)")
    run.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS), help="subset of runs")
    compare = commands.add_parser("compare", help="compare the predictions of two `run` directories")
    compare.add_argument("dir_a")
    compare.add_argument("dir_b")
    args = parser.parse_args(argv)
    return command_run(args) if args.command == "run" else command_compare(args)


if __name__ == "__main__":
    sys.exit(main())
