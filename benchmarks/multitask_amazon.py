"""Multi-task transfer: SST-2 (all of it) + 200 labelled Amazon electronics reviews, vs the 200 alone.

    python benchmarks/multitask_amazon.py OUT [--seeds 0,1,2] [--lambdas 0.25,1,4] [--sst2 0]

Target: 200 labelled electronics reviews per seed (a different stratified sample per seed; 10% held
out for epoch selection), scored on 1,000 other electronics reviews (a fixed half of the domain, never
sampled).  Source: SST-2's ``train.tsv`` (``--sst2 0`` = all 67,349 sentences), its own task with its
own labels and head.

* ``single``: ``finetune`` on the 200 reviews (5 epochs: 35 steps, enough for the head to converge);
* ``multitask``: ``multitask`` with SST-2 as ``data.sources.sst2`` (defaults: temperature sampling
  T = 2, λ = 1), 1 epoch (a pass over the 2,100+ batches of both tasks);
* ``lambda``: ``multitask`` at seed 0 with ``weights.main`` = each of ``--lambdas`` (λ on the target
  loss, ``L_source + λ·L_target``).

Every run: MiniLM-L6, max length 128, batch 32, lr 1e-4.  Prints per-seed accuracies, the mean paired
difference with a sign-flip test over seeds, and the λ curve (OUT/lambda.png).  CPU flags beside the
timings.  A benchmark, not a test: exit status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.environ.get("TRANSFERKIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
DATA = os.path.join(SHARED, "data", "amazon_multidomain_sentiment", "electronics")

from transferkit.core.config import RunConfig  # noqa: E402
from transferkit.core.machine import cpu_flags  # noqa: E402
from transferkit.experiments.run import train  # noqa: E402
from transferkit.reporting.stats import sign_flip_p_value  # noqa: E402


def write_jsonl(path: str, records: list[dict]) -> str:
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    os.replace(path + ".tmp", path)
    return path


def prepare(out: str, seeds: list[int]) -> dict[str, str]:
    """A fixed test half of the domain; per seed, 200 labelled reviews sampled from the other half."""
    from transferkit.data.amazon_reviews import read_reviews

    folder = os.path.join(out, "data")
    os.makedirs(folder, exist_ok=True)
    table = read_reviews(DATA)
    texts, labels = table.data["text"], table.data["label"]
    rng = np.random.default_rng(2007)
    pool, test = [], []
    for label in sorted(set(labels)):
        members = rng.permutation([i for i, y in enumerate(labels) if y == label]).tolist()
        pool += members[: len(members) // 2]
        test += members[len(members) // 2:]
    files = {"test": write_jsonl(os.path.join(folder, "test.jsonl"), [{"text": texts[i], "label": labels[i]}
                                                                      for i in sorted(test)])}
    for seed in seeds:
        sample = []
        for label in sorted(set(labels)):
            members = [i for i in pool if labels[i] == label]
            sample += np.random.default_rng(seed).permutation(members)[:100].tolist()
        files[f"train{seed}"] = write_jsonl(os.path.join(folder, f"train{seed}.jsonl"),
                                            [{"text": texts[i], "label": labels[i]} for i in sorted(sample)])
    return files


def run(out: str, name: str, files: dict[str, str], seed: int, strategy: dict, epochs: int, sst2: int) -> float:
    output = os.path.join(out, "runs", name)
    if not os.path.exists(os.path.join(output, "metrics.json")):
        data = {"train": files[f"train{seed}"], "test": {"electronics": files["test"]}, "max_length": 128}
        if strategy["name"] == "multitask":
            data["sources"] = {"sst2": {"path": os.path.join(SHARED, "data", "sst2", "train.tsv"),
                                        "task": "classification", "text_column": "sentence"}}
        started = time.perf_counter()
        config = RunConfig.from_dict({"model": "minilm-l6", "strategy": strategy, "output": output, "data": data,
                                      "training": {"epochs": epochs, "batch_size": 32, "learning_rate": 1e-4,
                                                   "seed": seed, "checkpoint_every": 0, "progress": False}})
        if sst2 and strategy["name"] == "multitask":
            config.data.sources["sst2"]["path"] = _head(config.data.sources["sst2"]["path"], sst2, out)
        train(config)
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
        return float(json.load(handle)["test"]["electronics"]["accuracy"])


def _head(path: str, rows: int, out: str) -> str:
    """The first ``rows`` sentences of a TSV (a smaller source for a quick check)."""
    target = os.path.join(out, "data", f"sst2_{rows}.tsv")
    with open(path, encoding="utf-8") as source, open(target, "w", encoding="utf-8") as handle:
        for index, line in enumerate(source):
            if index > rows:
                break
            handle.write(line)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--lambdas", default="0.25,1,4")
    parser.add_argument("--sst2", type=int, default=0, help="SST-2 sentences to use (0 = all)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print("CPU:", cpu_flags(), flush=True)
    files = prepare(args.out, seeds)
    single = [run(args.out, f"single/seed{s}", files, s, {"name": "finetune"}, 5, args.sst2) for s in seeds]
    multi = [run(args.out, f"multitask/seed{s}", files, s, {"name": "multitask"}, 1, args.sst2) for s in seeds]
    differences = np.array(multi) - np.array(single)
    print("\n| seed | single (200 reviews) | multitask (+ SST-2) | Δ |\n|---|---|---|---|")
    for seed, a, b in zip(seeds, single, multi, strict=True):
        print(f"| {seed} | {a:.4f} | {b:.4f} | {100 * (b - a):+.1f} |")
    p_value = sign_flip_p_value(differences) if len(seeds) > 1 else float("nan")
    print(f"mean: single {np.mean(single):.4f}, multitask {np.mean(multi):.4f}, "
          f"Δ {100 * differences.mean():+.2f} points, sign-flip p = {p_value:.3f} over {len(seeds)} seeds")
    lambdas = [float(x) for x in args.lambdas.split(",")]
    # λ = 1 is the multitask default (every task weight 1): seed 0's multitask run is that point, not redone
    curve = [multi[0] if lam == 1 else run(args.out, f"lambda/{lam:g}", files, seeds[0],
                                           {"name": "multitask", "weights": {"main": lam}}, 1, args.sst2)
             for lam in lambdas]
    print("\nλ (weight of the target loss): " + ", ".join(f"{lam:g} → {acc:.4f}" for lam, acc in zip(lambdas, curve,
                                                                                                   strict=True)))
    _plot(lambdas, curve, single[0], os.path.join(args.out, "lambda.png"))


def _plot(lambdas: list[float], curve: list[float], single: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.plot(lambdas, [100 * a for a in curve], marker="o", label="multitask (SST-2 + 200 reviews)")
    axis.axhline(100 * single, color="grey", linestyle="--", label="200 reviews alone")
    axis.set(xscale="log", xlabel="λ (target loss weight)", ylabel="electronics test accuracy (%)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
