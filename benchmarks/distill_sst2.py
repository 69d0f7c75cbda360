"""Distillation on SST-2: a half-depth MiniLM student vs its fine-tuned MiniLM-L6 teacher, side by side.

    python benchmarks/distill_sst2.py OUT [--labelled 8000] [--unlabelled 20000] [--test 2000] [--epochs 2]

Data (``../shared/data/sst2/train.tsv``, our own split, seeded): a stratified ``--test`` set held out
first and used once at the end; ``--labelled`` sentences for training (10% of them held out for
epoch selection); the next ``--unlabelled`` sentences, labels dropped, as transfer text for the student.

Arms (each a transferkit run under OUT/runs):

* ``teacher``: ``finetune`` of minilm-l6 (6 layers), 1 epoch, lr 1e-4, max length 64, batch 32;
* ``student``: ``distill`` from the teacher (defaults: 3 layers = every other one, started from the
  teacher's, α 0.5, T 2) on the labelled sentences + the unlabelled ones;
* ``student_labels_only``: the same 3-layer start trained on the labelled sentences alone (α = 1: no
  soft targets, no unlabelled text), the control that shows what the teacher's logits add.

Speed: every model predicts the same test sentences through ``transferkit.load(RUN).predict`` at
batch 32 (all of them) and batch 1 (the first 300), repeated ``--repeats`` times in alternation,
median seconds; ratios are against the teacher measured in the same loop.  The CPU's flags are printed
beside the figures.  A benchmark, not a test: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.environ.get("TRANSFERKIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))

from transferkit.core.machine import cpu_flags  # noqa: E402
from transferkit.experiments.api import load, make_config  # noqa: E402
from transferkit.experiments.run import train  # noqa: E402


def split(out: str, labelled: int, unlabelled: int, test: int, seed: int = 0) -> dict[str, str]:
    """Stratified test set first, then labelled and unlabelled slices of the rest (seeded)."""
    with open(os.path.join(SHARED, "data", "sst2", "train.tsv"), encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t")]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    by_label: dict[str, list[int]] = {}
    for index in order:
        by_label.setdefault(rows[index]["label"], []).append(int(index))
    share = {label: round(test * len(items) / len(rows)) for label, items in by_label.items()}
    test_ids = {i for label, items in by_label.items() for i in items[: share[label]]}
    rest = [int(i) for i in order if int(i) not in test_ids]
    parts = {"test": sorted(test_ids), "labelled": rest[:labelled], "unlabelled": rest[labelled: labelled + unlabelled]}
    os.makedirs(os.path.join(out, "data"), exist_ok=True)
    paths = {}
    for name, ids in parts.items():
        paths[name] = os.path.join(out, "data", f"{name}.tsv")
        with open(paths[name], "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t")
            writer.writerow(["sentence", "label"])
            writer.writerows([rows[i]["sentence"], rows[i]["label"]] for i in ids)
    return paths


def run_arm(name: str, out: str, paths: dict[str, str], epochs: int, extra: list[str]) -> dict:
    output = os.path.join(out, "runs", name)
    if os.path.exists(os.path.join(output, "metrics.json")):
        with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
            return json.load(handle)
    overrides = [f"data.train={paths['labelled']}", f"data.test={paths['test']}", "data.text_column=sentence",
                 "data.label_column=label", "data.eval_fraction=0.1", "data.max_length=64", "training.batch_size=32",
                 "training.learning_rate=1e-4", f"training.epochs={epochs}", "training.checkpoint_every=0",
                 f"output={output}", *extra]
    started = time.perf_counter()
    metrics = train(make_config(None, overrides)).metrics
    print(f"{name}: test accuracy {metrics['test']['test']['accuracy']:.4f} in {time.perf_counter() - started:.0f} s",
          flush=True)
    return metrics


def timings(out: str, names: list[str], paths: dict[str, str], repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds to predict the test sentences at batch 32 and the first 300 at batch 1, per arm."""
    with open(paths["test"], encoding="utf-8") as handle:
        texts = [row["sentence"] for row in csv.DictReader(handle, delimiter="\t")]
    models = {name: load(os.path.join(out, "runs", name)) for name in names}
    seconds: dict[str, dict[str, list[float]]] = {name: {"batch32": [], "batch1": []} for name in names}
    for _ in range(repeats):
        for name, model in models.items():
            for key, size, inputs in (("batch32", 32, texts), ("batch1", 1, texts[:300])):
                model.predictor.batch_size = size
                started = time.perf_counter()
                model.predict(inputs)
                seconds[name][key].append(time.perf_counter() - started)
    return {name: {key: statistics.median(values) for key, values in parts.items()} for name, parts in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--labelled", type=int, default=8000)
    parser.add_argument("--unlabelled", type=int, default=20000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2, help="student epochs (the teacher trains 1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("CPU:", cpu_flags(), flush=True)
    paths = split(args.out, args.labelled, args.unlabelled, args.test)
    teacher = os.path.join(args.out, "runs", "teacher")
    results = {
        "teacher": run_arm("teacher", args.out, paths, 1, ["strategy.name=finetune"]),
        "student": run_arm("student", args.out, paths, args.epochs, [
            "strategy.name=distill", f"teacher={teacher}", f"data.sources.unlabeled={paths['unlabelled']}"]),
        "student_labels_only": run_arm("student_labels_only", args.out, paths, args.epochs, [
            "strategy.name=distill", f"teacher={teacher}", "strategy.alpha=1.0"]),
    }
    speed = timings(args.out, list(results), paths, args.repeats)
    base_accuracy = results["teacher"]["test"]["test"]["accuracy"]
    print(f"\nSST-2, {args.test} held-out test sentences; CPU: {cpu_flags()}")
    print("| model | layers | test accuracy | % of teacher | batch 32 s | speed-up | batch 1 s | speed-up | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, metrics in results.items():
        accuracy = metrics["test"]["test"]["accuracy"]
        layers = len(metrics.get("encoder", {}).get("student_layers", [])) or 6
        print(f"| {name} | {layers} | {accuracy:.4f} | {100 * accuracy / base_accuracy:.1f}% "
              f"| {speed[name]['batch32']:.2f} | {speed['teacher']['batch32'] / speed[name]['batch32']:.2f}x "
              f"| {speed[name]['batch1']:.2f} | {speed['teacher']['batch1'] / speed[name]['batch1']:.2f}x "
              f"| {metrics['train_seconds']:.0f} |")
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump({"cpu": cpu_flags(), "speed": speed, "metrics": results}, handle, indent=2)


if __name__ == "__main__":
    main()
