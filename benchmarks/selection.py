"""Does ``transferkit select`` rank source models the way fine-tuning them does?  And at what cost?

Protocol, fixed before any result was seen (datasets and splits: ``selection_data.py``):

* candidates: the eleven offline catalog models below (nine transformers for NER, which static vectors and
  sentence encoders cannot serve); ground truth per kind: ``finetune`` for transformers, ``word_vectors`` for
  static vectors, ``feature_extraction`` for frozen-only encoders, every run with the strategy's defaults
  (3 epochs, per-epoch eval on the 200 eval examples), seeds 42 and 43; the truth is the mean test metric
  (accuracy; entity F1 for NER) on the 500 test examples;
* the estimator under test is LogME with layer mean (``select``'s defaults), scored on the 1,000 training
  examples; hscore, hscore_shrink, knn, linear (layer mean) and LogME last/best are reported beside it;
* correlation per dataset over the candidates except ``random-bert`` (the negative control: it must rank last
  among the candidates that share its tokenizer), and on Chinese data only over candidates whose tokenizer
  maps ≤ 10% of tokens to [UNK] (static vectors: words missing from the vectors); Pearson's r and the
  weighted Kendall τ (scipy ``weightedtau``, hyperbolic weights on the top ranks); both averaged over datasets;
* cost: process CPU seconds of ``select`` (features computed from scratch, all candidates) against those of the
  ground-truth runs of one seed, both run alone on this machine.

Every run is cached under ``--out``: a rerun resumes, and ``advise``'s benchmark reuses the fine-tuned runs.

    python benchmarks/selection.py --out benchmarks/out/selection            # everything (hours on 2 cores)
    python benchmarks/selection.py --out ... --datasets sst2 --seeds 42      # one dataset, one seed
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from selection_data import LANGUAGE, prepare  # noqa: E402

CANDIDATES = ["minilm-l6", "minilm-l6@3", "minilm-l3", "multilingual-e5-small", "multilingual-e5-small@4",
              "multilingual-e5-small@8", "mpnet-base", "mpnet-base@6", "random-bert", "use-multilingual", "glove-6b-50d"]
CONTROL = "random-bert"
SAME_TOKENIZER = ["minilm-l6", "minilm-l6@3", "minilm-l3", CONTROL]
TRUTH_STRATEGY = {"transformer": "finetune", "vectors": "word_vectors", "text_encoder": "feature_extraction"}
OTHERS = [("logme", "last"), ("logme", "best"), ("hscore", "mean"), ("hscore_shrink", "mean"), ("knn", "mean"),
          ("linear", "mean")]
MAX_UNK = 0.10


def candidates(task: str) -> list[str]:
    from transferkit.models import get_entry

    return [m for m in CANDIDATES if task == "classification" or get_entry(m).kind == "transformer"]


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(command: list[str], log: Path) -> float:
    """Run one command alone; returns its CPU seconds (user + system, all threads)."""
    before = child_cpu()
    with open(log, "w", encoding="utf-8") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")
    return child_cpu() - before


def data_options(files: dict) -> dict:
    keys = ("text_column", "label_column", "format")
    return {key: files[key] for key in keys if key in files}


def score(out: Path, name: str, files: dict) -> dict:
    """``transferkit select`` from scratch (its own feature cache), timed; then the other estimators from cache."""
    target = out / "select" / f"{name}.json"
    cost_file = out / "select" / f"{name}.cost.json"
    models = candidates(files["task"])
    if not cost_file.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        cache = out / "select-cache" / name
        for path in cache.glob("selection/*.safetensors"):
            path.unlink()
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in data_options(files).items()]
        command = [sys.executable, "-m", "transferkit.cli.main", "select", "--train", files["train"],
                   "--task", files["task"], "--models", ",".join(models), "--output", str(target),
                   "--cache-dir", str(cache), *flags]
        seconds = run_child(command, out / "select" / f"{name}.log")
        cost_file.write_text(json.dumps({"cpu_seconds": seconds}))
    from transferkit.experiments.select import select

    scores = {"logme/mean": {r["model"]: r["score"] for r in json.loads(target.read_text())}}
    for estimator, layers in OTHERS:
        records = select(files["train"], models, estimator, layers, task=files["task"], data=data_options(files),
                         cache_dir=str(out / "select-cache" / name), progress=False)
        scores[f"{estimator}/{layers}"] = {r["model"]: r["score"] for r in records}
    return {"scores": scores, "cpu_seconds": json.loads(cost_file.read_text())["cpu_seconds"]}


def truth_run(out: Path, name: str, files: dict, model: str, seed: int, cached_only: bool = False) -> dict | None:
    """One ground-truth run (cached): its test metric and CPU seconds; None when ``cached_only`` and not run yet."""
    from transferkit.models import get_entry
    from transferkit.tasks import TASKS

    run_dir = out / "truth" / name / f"{model}-s{seed}"
    record_file = run_dir.parent / f"{model}-s{seed}.json"
    if record_file.is_file():
        return json.loads(record_file.read_text())
    if cached_only:
        return None
    if run_dir.exists():  # a run killed before its record was written: start it again
        shutil.rmtree(run_dir)
    strategy = TRUTH_STRATEGY[get_entry(model).kind]
    config = {"model": model, "strategy": {"name": strategy}, "task": {"name": files["task"]}, "output": str(run_dir),
              "data": {"train": files["train"], "eval": files["eval"], "test": files["test"], **data_options(files)},
              "training": {"seed": seed, "progress": False}}
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    config_file = run_dir.parent / f"{model}-s{seed}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "transferkit.cli.main", "train", "--config", str(config_file)]
    seconds = run_child(command, run_dir.parent / f"{model}-s{seed}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metric = TASKS.get(files["task"]).primary_metric
    record = {"model": model, "strategy": strategy, "seed": seed, "test": metrics["test"]["test"][metric],
              "cpu_seconds": seconds}
    record_file.write_text(json.dumps(record))
    return record


def unknown_rates(files: dict, models: list[str]) -> dict[str, float | None]:
    """Share of [UNK] tokens under each candidate's tokenizer (static vectors: words the vectors lack)."""
    from transformers import AutoTokenizer

    from transferkit.data.unknown_tokens import unknown_token_rate
    from transferkit.models import build_tokenizer, get_entry, read_vectors, resolve, vocabulary

    texts = [line.split("\t")[0] for line in Path(files["train"]).read_text(encoding="utf-8").splitlines()[1:]]
    rates: dict[str, float | None] = {}
    for model in models:
        kind = get_entry(model).kind
        if kind == "transformer":
            rates[model] = unknown_token_rate(texts, AutoTokenizer.from_pretrained(resolve(model).path_or_id))
        elif kind == "vectors":
            tokenizer = build_tokenizer(texts)
            words = vocabulary(tokenizer)
            known = read_vectors(model, set(words)).index
            ids = np.concatenate([np.asarray(i) for i in tokenizer(texts, add_special_tokens=False)["input_ids"]])
            rates[model] = float(np.mean([words[i] not in known for i in ids]))
        else:
            rates[model] = None  # a SentencePiece sentence encoder: its tokens are not exposed
    return rates


def analyse(name: str, files: dict, scores: dict, truths: dict[str, list[float]]) -> dict:
    from scipy.stats import pearsonr, weightedtau

    models = [m for m in candidates(files["task"]) if truths.get(m)]
    rates = unknown_rates(files, models) if LANGUAGE[name] == "zh" else {}
    included = [m for m in models if m != CONTROL and (rates.get(m) is None or rates[m] <= MAX_UNK)]
    truth = np.array([np.mean(truths[m]) for m in included])
    result = {"included": included, "unk": rates, "truth": {m: float(np.mean(truths[m])) for m in models},
              "correlation": {}}
    for key, by_model in scores["scores"].items():
        values = np.array([by_model[m] for m in included])
        result["correlation"][key] = {"pearson": float(pearsonr(values, truth)[0]),
                                      "weighted_tau": float(weightedtau(values, truth)[0])}
    logme = scores["scores"]["logme/mean"]
    group = [m for m in SAME_TOKENIZER if m in logme]
    result["control_last"] = min(group, key=lambda m: logme[m]) == CONTROL
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/out/selection")
    parser.add_argument("--datasets", default="sst2,trec,waimai,conll")
    parser.add_argument("--seeds", default="42,43")
    parser.add_argument("--skip-truth", action="store_true", help="score only (no ground-truth runs)")
    parser.add_argument("--cached-truth", action="store_true",
                        help="analyse the ground-truth runs already made (missing candidates are left out and listed)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    names, seeds = args.datasets.split(","), [int(s) for s in args.seeds.split(",")]
    datasets = prepare(str(out), names)
    summary = {}
    for name, files in datasets.items():
        scored = score(out, name, files)
        print(f"{name}: select scored {len(candidates(files['task']))} candidates in {scored['cpu_seconds']:.0f} CPU s",
              flush=True)
        if args.skip_truth:
            continue
        runs = [truth_run(out, name, files, model, seed, args.cached_truth)
                for seed in seeds for model in candidates(files["task"])]
        missing = sorted({m for m in candidates(files["task"]) if not any(r and r["model"] == m for r in runs)})
        runs = [run for run in runs if run is not None]
        truths: dict[str, list[float]] = {}
        for run in runs:
            truths.setdefault(run["model"], []).append(run["test"])
        summary[name] = analyse(name, files, scored, truths)
        summary[name]["missing_truth"] = missing
        summary[name]["seeds"] = sorted({r["seed"] for r in runs})
        summary[name]["select_cpu_seconds"] = scored["cpu_seconds"]
        summary[name]["truth_cpu_seconds_one_seed"] = sum(r["cpu_seconds"] for r in runs if r["seed"] == seeds[0])
        summary[name]["logme_mean"] = scored["scores"]["logme/mean"]
        print(json.dumps({name: summary[name]["correlation"]["logme/mean"]}), flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    from selection_report import report

    print(report(summary, os.cpu_count()))


if __name__ == "__main__":
    main()
