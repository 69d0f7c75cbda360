"""Distillation and compressed export on SST-2: cost and accuracy of every form of one model, side by side.

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

Exported forms (``transferkit export --format onnx``, parity checked at export on the run's eval split):
``teacher_onnx``/``student_onnx`` (fp32) and ``teacher_int8``/``student_int8`` (onnxruntime dynamic
int8; an export the parity guard refuses is reported as refused and left out of the table).

Cost: every form predicts the same test sentences through ``transferkit.load(DIR).predict`` at batch 32
(all of them: throughput) and batch 1 (the first 300: latency), repeated ``--repeats`` times in
alternation, median; ratios are against the teacher in PyTorch fp32 measured in the same loop.  Also:
size of the model directory, test accuracy, agreement with the teacher's predictions.  Written to
OUT/cost.md (table) and OUT/cost.png (accuracy vs throughput), with the CPU's flags, since int8 gains
depend on VNNI.  A benchmark, not a test: the exit status is 0 whatever the figures.
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

from transferkit.core.errors import UserError  # noqa: E402
from transferkit.core.machine import cpu_flags  # noqa: E402
from transferkit.experiments.api import export_run, load, make_config  # noqa: E402
from transferkit.experiments.run import train  # noqa: E402
from transferkit.serving.onnx_export import OnnxExportConfig  # noqa: E402


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


def export(out: str, name: str, quantize: str) -> str | None:
    """``transferkit export RUN --format onnx [--quantize int8]`` (reused when present); None when refused."""
    source, target = os.path.join(out, "runs", name.rsplit("_", 1)[0]), os.path.join(out, "runs", name)
    if not os.path.exists(target):
        started = time.perf_counter()
        try:
            export_run(source, target, to="onnx", onnx=OnnxExportConfig(quantize=quantize))
        except UserError as exc:  # the parity guard refused it: reported, not hidden
            print(f"{name}: REFUSED: {exc}", flush=True)
            return None
        print(f"{name}: exported in {time.perf_counter() - started:.0f} s", flush=True)
    return target


def directory_mb(path: str) -> float:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files) / 2**20


def measure(out: str, names: list[str], texts: list[str], repeats: int) -> dict[str, dict]:
    """Per form: median seconds at batch 32 (all texts) and batch 1 (the first 300), its predictions, its size."""
    models = {name: load(os.path.join(out, "runs", name)) for name in names}
    seconds: dict[str, dict[str, list[float]]] = {name: {"batch32": [], "batch1": []} for name in names}
    predictions: dict[str, list] = {}
    for _ in range(repeats):
        for name, model in models.items():
            for key, size, inputs in (("batch32", 32, texts), ("batch1", 1, texts[:300])):
                model.predictor.batch_size = size
                started = time.perf_counter()
                predicted = model.predict(inputs)
                seconds[name][key].append(time.perf_counter() - started)
                if key == "batch32":
                    predictions[name] = list(predicted)
    return {name: {"batch32": statistics.median(parts["batch32"]), "batch1": statistics.median(parts["batch1"]),
                   "predictions": predictions[name], "mb": directory_mb(os.path.join(out, "runs", name, "model"))}
            for name, parts in seconds.items()}


def cost_table(cost: dict[str, dict], labels: list[str], texts: list[str]) -> list[str]:
    teacher = cost["teacher"]
    base_accuracy = float(np.mean([p == y for p, y in zip(teacher["predictions"], labels, strict=True)]))
    lines = [f"SST-2, {len(texts)} held-out test sentences; CPU: {cpu_flags()}", "",
             "| form | MB | test accuracy | % of teacher | agrees with teacher | batch 1 ms/text | speed-up "
             "| batch 32 texts/s | speed-up |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in cost.items():
        accuracy = float(np.mean([p == y for p, y in zip(row["predictions"], labels, strict=True)]))
        agreement = float(np.mean([p == q for p, q in zip(row["predictions"], teacher["predictions"], strict=True)]))
        row.update(accuracy=accuracy, throughput=len(texts) / row["batch32"])
        lines.append(f"| {name} | {row['mb']:.1f} | {accuracy:.4f} | {100 * accuracy / base_accuracy:.1f}% "
                     f"| {100 * agreement:.2f}% | {1000 * row['batch1'] / 300:.2f} "
                     f"| {teacher['batch1'] / row['batch1']:.2f}x | {row['throughput']:.0f} "
                     f"| {teacher['batch32'] / row['batch32']:.2f}x |")
    return lines


def plot(cost: dict[str, dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, row in cost.items():
        axis.scatter(row["throughput"], 100 * row["accuracy"])
        axis.annotate(name, (row["throughput"], 100 * row["accuracy"]), textcoords="offset points", xytext=(4, 4))
    axis.set(xlabel="texts/s at batch 32", ylabel="test accuracy (%)", title=f"SST-2 cost vs accuracy ({cpu_flags()[:40]}...)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


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
    exported = [export(args.out, name, quantize) for name, quantize in (
        ("teacher_onnx", "none"), ("teacher_int8", "int8"), ("student_onnx", "none"), ("student_int8", "int8"))]
    forms = [*results, *(form for form in exported if form is not None)]
    with open(paths["test"], encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    texts, labels = [row["sentence"] for row in rows], [row["label"] for row in rows]
    cost = measure(args.out, [os.path.basename(form) for form in forms], texts, args.repeats)
    lines = cost_table(cost, labels, texts)
    print("\n" + "\n".join(lines))
    plot(cost, os.path.join(args.out, "cost.png"))
    with open(os.path.join(args.out, "cost.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n\n![cost](cost.png)\n")
    summary = {name: {k: v for k, v in row.items() if k != "predictions"} for name, row in cost.items()}
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump({"cpu": cpu_flags(), "cost": summary, "metrics": results}, handle, indent=2)


if __name__ == "__main__":
    main()
