"""Meta-learning on TREC: does episodic training on some question types help on question types never seen?

    python benchmarks/trec_meta_learning.py OUT [--episodes 600] [--queries 15] [--epochs 3] [--no-finetune]

Data: ``../shared/data/trec/train_5500.label.txt`` (Li & Roth 2002; lines ``COARSE:fine question``), the 50
fine-grained classes named with their coarse type (``LOC:other`` and ``NUM:other`` differ).  Class split,
fixed before any run: the 35 classes with at least 20 questions, sorted by name and permuted with
``default_rng(0)``; the first 17 are meta-training classes (3,788 questions), the other 18 are held out
(1,509 questions; 20 = K + Q of a 5-way 5-shot episode with 15 queries).  The 15 smaller classes are unused.

Encoders (MiniLM-L6, mean pooling, max length 64; each a transferkit run under OUT/runs on the training
classes, 10% of those questions held out as the run's eval split):

* ``pretrained``: the encoder without meta-training (a ``feature_extraction`` run: the encoder is unchanged);
* ``protonet``: ``protonet`` with its defaults (5-way 5-shot episodes, 5 queries, one pass over the rows per
  epoch: ceil(3,409 / 50) = 69 episodes; lr 5e-5), ``--epochs`` epochs;
* ``finetune``: non-episodic ``finetune`` (17-way cross-entropy head, batch 32, lr 5e-5) on the same
  questions for the same epochs: the same data and about the same rows seen, without episodes.

Evaluation: ``--episodes`` 5-way 5-shot episodes (``--queries`` per class) on the held-out classes, the same
episodes for every encoder (``data.episodes.sample_episodes``, seed 0), queries classified by the nearest
prototype of the support features (``evaluation.fewshot``): mean accuracy ± 1.96·s/√E and the paired
per-episode difference to ``pretrained``.  Also each run's own eval accuracy on the training classes
(17-way, through its saved head).  Sizing, measured on 2 CPU cores shared with other jobs (load 4-8): protonet
1,024 s wall / 548 CPU s at 3 epochs, finetune 736 / 539, pretrained 47 / 31, encoding the held-out questions
14-20 s per encoder; ~32 minutes in all there (CPU s count both threads; an idle machine should take less, not measured).  Runs
already in OUT are reused.  Prints the CPU flags beside the wall and CPU seconds; writes OUT/results.json,
OUT/results.md and the per-episode accuracies (OUT/episode_accuracies.npy, one row per encoder).  A benchmark,
not a test: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.environ.get("TRANSFERKIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
TREC = os.path.join(SHARED, "data", "trec", "train_5500.label.txt")

from transferkit.core.config import RunConfig  # noqa: E402
from transferkit.core.machine import cpu_flags  # noqa: E402
from transferkit.data.episodes import EpisodeShape, sample_episodes  # noqa: E402
from transferkit.evaluation.fewshot import episode_accuracies, mean_interval, paired_difference  # noqa: E402
from transferkit.experiments.run import train  # noqa: E402
from transferkit.serving import load_predictor  # noqa: E402

MIN_CLASS, SPLIT_SEED, EPISODE_SEED = 20, 0, 0


def read_trec(path: str) -> tuple[list[str], list[str]]:
    """(questions, fine labels ``COARSE:fine``); the file is UTF-8 (latin-1 read as a fallback)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except UnicodeDecodeError:
        with open(path, encoding="latin-1") as handle:
            lines = handle.read().splitlines()
    pairs = [line.split(" ", 1) for line in lines if line.strip()]
    return [text.strip() for _, text in pairs], [label for label, _ in pairs]


def class_split(labels: list[str]) -> tuple[list[str], list[str]]:
    """(meta-training classes, held-out classes): the classes with >= MIN_CLASS questions, halved at random."""
    counts = Counter(labels)
    eligible = sorted(label for label, count in counts.items() if count >= MIN_CLASS)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(eligible))
    half = len(eligible) // 2
    return sorted(eligible[i] for i in order[:half]), sorted(eligible[i] for i in order[half:])


def write_tsv(path: str, texts: list[str], labels: list[str]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    os.replace(path + ".tmp", path)
    return path


def run_arm(out: str, name: str, strategy: str, train_file: str, epochs: int) -> dict:
    """Train one encoder on the training classes (skipped when OUT already holds it); its run facts."""
    output = os.path.join(out, "runs", name)
    metrics_path = os.path.join(output, "metrics.json")
    if not os.path.exists(metrics_path):
        started, cpu = time.perf_counter(), time.process_time()
        train(RunConfig.from_dict({
            "model": "minilm-l6", "strategy": strategy, "output": output,
            "data": {"train": train_file, "max_length": 64},
            "training": {"epochs": epochs, "batch_size": 32, "seed": 0, "checkpoint_every": 0, "progress": False}}))
        timing = {"wall_seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}
        with open(os.path.join(output, "timing.json"), "w", encoding="utf-8") as handle:
            json.dump(timing, handle)
    with open(metrics_path, encoding="utf-8") as handle:
        metrics = json.load(handle)
    with open(os.path.join(output, "timing.json"), encoding="utf-8") as handle:
        timing = json.load(handle)
    return {"run": output, "steps": metrics["steps"], "train_seconds": metrics["train_seconds"], **timing,
            "eval_accuracy_training_classes": metrics["eval"]["accuracy"]}


def encode(run_dir: str, texts: list[str]) -> tuple[np.ndarray, dict[str, float]]:
    """Pooled features of ``texts`` from a saved run's encoder, and the seconds it took."""
    started, cpu = time.perf_counter(), time.process_time()
    features = load_predictor(run_dir).text_encoder("benchmark").encode(texts)
    return features, {"wall_seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


def evaluate_arms(out: str, arms: dict[str, dict], texts: list[str], labels: list[str], shape: EpisodeShape,
                  count: int) -> dict[str, dict]:
    """Every arm's accuracy on the same held-out episodes, and its paired difference to ``pretrained``."""
    names = sorted(set(labels))
    ids = np.array([names.index(label) for label in labels])
    episodes = sample_episodes(ids, shape, count, EPISODE_SEED)
    accuracies, results = {}, {}
    for name, arm in arms.items():
        features, timing = encode(arm["run"], texts)
        accuracies[name] = episode_accuracies(features, episodes, shape.shots)
        score = mean_interval(accuracies[name])
        results[name] = {**arm, "encode": timing, "accuracy": score.mean, "ci95_half_width": score.half_width,
                         "std": score.std}
    for name in arms:
        if name != "pretrained":
            difference = paired_difference(accuracies[name], accuracies["pretrained"])
            results[name]["vs_pretrained"] = {"mean": difference.mean, "ci95_half_width": difference.half_width,
                                              "episodes_better": int((accuracies[name] > accuracies["pretrained"]).sum()),
                                              "episodes_worse": int((accuracies[name] < accuracies["pretrained"]).sum())}
    np.save(os.path.join(out, "episode_accuracies.npy"), np.stack([accuracies[name] for name in arms]))
    return results


def markdown(results: dict[str, dict], facts: dict) -> str:
    shape = facts["shape"]
    lines = [f"TREC held-out classes ({facts['held_out_classes']} classes, {facts['held_out_questions']} questions): "
             f"{shape} episodes, {facts['episodes']} episodes (the same for every encoder); mean accuracy ± 95% CI "
             "(1.96·s/√E); Δ = paired per-episode difference to the pretrained encoder.", "",
             "| encoder | accuracy (%) | Δ vs pretrained (points) | better / worse episodes | train steps | "
             "train wall s | train CPU s | 17-way eval acc (training classes) |", "|---|---|---|---|---|---|---|---|"]
    for name, row in results.items():
        versus = row.get("vs_pretrained")
        delta = f"{100 * versus['mean']:+.2f} ± {100 * versus['ci95_half_width']:.2f}" if versus else "—"
        counts = f"{versus['episodes_better']} / {versus['episodes_worse']}" if versus else "—"
        lines.append(f"| {name} | {100 * row['accuracy']:.2f} ± {100 * row['ci95_half_width']:.2f} | {delta} | "
                     f"{counts} | {row['steps']} | {row['wall_seconds']:.0f} | {row['cpu_seconds']:.0f} | "
                     f"{100 * row['eval_accuracy_training_classes']:.1f} |")
    lines += ["", f"CPU: {facts['cpu']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--episodes", type=int, default=600, help="held-out test episodes")
    parser.add_argument("--queries", type=int, default=15, help="queries per class of a test episode")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of protonet and finetune on the training classes")
    parser.add_argument("--no-finetune", action="store_true", help="leave out the non-episodic finetune arm")
    args = parser.parse_args()
    print("CPU:", cpu_flags(), flush=True)
    texts, labels = read_trec(TREC)
    seen, held = class_split(labels)
    train_rows = [i for i, label in enumerate(labels) if label in seen]
    held_rows = [i for i, label in enumerate(labels) if label in held]
    print(f"meta-training classes ({len(seen)}, {len(train_rows)} questions): {', '.join(seen)}")
    print(f"held-out classes ({len(held)}, {len(held_rows)} questions): {', '.join(held)}", flush=True)
    train_file = write_tsv(os.path.join(args.out, "data", "train_classes.tsv"), [texts[i] for i in train_rows],
                           [labels[i] for i in train_rows])
    arms = {"pretrained": run_arm(args.out, "pretrained", "feature_extraction", train_file, args.epochs),
            "protonet": run_arm(args.out, "protonet", "protonet", train_file, args.epochs)}
    if not args.no_finetune:
        arms["finetune"] = run_arm(args.out, "finetune", "finetune", train_file, args.epochs)
    shape = EpisodeShape(ways=5, shots=5, queries=args.queries)
    results = evaluate_arms(args.out, arms, [texts[i] for i in held_rows], [labels[i] for i in held_rows], shape,
                            args.episodes)
    facts = {"cpu": cpu_flags(), "shape": shape.describe(), "episodes": args.episodes, "epochs": args.epochs,
             "training_classes": seen, "held_out_classes": len(held), "held_out_class_names": held,
             "held_out_questions": len(held_rows), "training_questions": len(train_rows)}
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump({"facts": facts, "results": results}, handle, indent=2)
    table = markdown(results, facts)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(table)
    print("\n" + table, flush=True)


if __name__ == "__main__":
    main()
