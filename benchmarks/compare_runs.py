"""Compare finished runs side by side: accuracy, trainable share, size on disk, reload fidelity.

    python benchmarks/compare_runs.py runs/sst2-finetune runs/sst2-lora [--merge-check]

For every run the model is loaded from disk twice, in this process, and evaluated on the run's
own eval split (rebuilt from its config.yaml). The reload counts as identical when both loads give
bit-identical probabilities and the same confusion matrix that training recorded in
metrics.json. With ``--merge-check``, runs that store a delta (LoRA/BitFit) are also exported
with ``--merge`` to a temporary directory, and the largest probability difference is printed.
The first run is the reference for the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from transferkit.core.config import DataConfig, build_dataclass, read_yaml_file  # noqa: E402
from transferkit.data.task_splits import load_text_splits  # noqa: E402
from transferkit.experiments.api import export_run  # noqa: E402
from transferkit.serving import load_predictor  # noqa: E402


def directory_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _stores_delta(run_dir: str) -> bool:
    path = os.path.join(run_dir, "model", "transferkit.json")
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as handle:
        return "base_model" in json.load(handle)


def check_run(run_dir: str, merge_check: bool) -> dict:
    config = read_yaml_file(os.path.join(run_dir, "config.yaml"), "config")
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    splits = load_text_splits(build_dataclass(DataConfig, config["data"], "data"), config["training"]["seed"])
    first = load_predictor(run_dir).predict(splits.eval)
    second = load_predictor(run_dir).predict(splits.eval)
    labels = np.asarray(splits.eval.labels)
    k = first.shape[1]
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (labels, first.argmax(1)), 1)
    row = {
        "run": run_dir, "strategy": config["strategy"]["name"], "accuracy": metrics["eval"]["accuracy"],
        "ci95": metrics["eval"].get("ci95", {}).get("accuracy"),
        "trainable": metrics["trainable_parameters"], "total": metrics["total_parameters"],
        "bytes": directory_bytes(run_dir),
        "reload_identical": bool(np.array_equal(first, second)
                                 and confusion.tolist() == metrics["eval"]["confusion_matrix"]),
    }
    if merge_check and _stores_delta(run_dir):
        with tempfile.TemporaryDirectory() as tmp:
            merged = export_run(run_dir, os.path.join(tmp, "merged"), merge=True)
            row["merged_max_abs_diff"] = float(np.abs(load_predictor(merged).predict(splits.eval) - first).max())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--merge-check", action="store_true")
    args = parser.parse_args()
    rows = [check_run(run, args.merge_check) for run in args.runs]
    ref = rows[0]
    print("| run | strategy | accuracy | 95% CI | Δ vs first (points) | trainable | share | size MB | size vs first "
          "| reload identical | merged max |Δp| |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ci = "—" if not r["ci95"] else f"{r['ci95'][0]:.3f}–{r['ci95'][1]:.3f}"
        merged = f"{r['merged_max_abs_diff']:.1e}" if "merged_max_abs_diff" in r else "—"
        print(f"| {r['run']} | {r['strategy']} | {r['accuracy']:.4f} | {ci} | {100 * (r['accuracy'] - ref['accuracy']):+.2f} "
              f"| {r['trainable']:,} | {r['trainable'] / r['total']:.2%} | {r['bytes'] / 1e6:.2f} "
              f"| {r['bytes'] / ref['bytes']:.2%} | {r['reload_identical']} | {merged} |")


if __name__ == "__main__":
    main()
