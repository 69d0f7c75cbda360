"""Each strategy with its defaults, as a new user runs it: does ``--strategy lora`` work out of the box?

    python benchmarks/strategy_defaults.py [--train ../shared/data/sst2/train.tsv] [--sentences 4000]

Trains ``finetune``, ``lora`` and ``bitfit`` with nothing set but the data (the text column, a cap of
``--sentences`` training sentences, 1 epoch, the default held-out 10% eval split capped at
``--eval-sentences``) through the CLI, each in its own process and one after the other, and prints
accuracy, the learning rate each strategy resolved to, train seconds, and the gap to ``finetune``.
The CPU's instruction-set flags are printed beside the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TRANSFERKIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))


def run(strategy: str, args: argparse.Namespace, folder: str) -> dict:
    output = os.path.join(folder, strategy)
    command = [sys.executable, "-m", "transferkit.cli.main", "train", "--model", "minilm-l6", "--strategy", strategy,
               "--train", args.train, "--text-column", "sentence", "--label-column", "label", "--output", output,
               "--set", f"data.max_train_examples={args.sentences}", "--set", "training.epochs=1",
               "--set", f"data.max_eval_examples={args.eval_sentences}", "--set", "training.progress=false"]
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    with open(os.path.join(output, "config.yaml"), encoding="utf-8") as handle:
        learning_rate = yaml.safe_load(handle)["training"]["learning_rate"]
    return {"strategy": strategy, "accuracy": metrics["eval"]["accuracy"], "ci95": metrics["eval"]["ci95"]["accuracy"],
            "learning_rate": learning_rate, "train_seconds": metrics["train_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default=os.path.join(SHARED, "data", "sst2", "train.tsv"))
    parser.add_argument("--sentences", type=int, default=4000)
    parser.add_argument("--eval-sentences", type=int, default=2000)
    parser.add_argument("--strategies", nargs="+", default=["finetune", "lora", "bitfit"])
    args = parser.parse_args()
    from transferkit.core.machine import cpu_flags

    print(f"CPU flags: {cpu_flags()}")
    with tempfile.TemporaryDirectory() as folder:
        rows = [run(strategy, args, folder) for strategy in args.strategies]
    reference = rows[0]["accuracy"]
    print(f"{'strategy':<12} {'lr':>8} {'accuracy':>9} {'95% CI':>15} {'vs ' + rows[0]['strategy']:>13} {'train s':>8}")
    for row in rows:
        low, high = row["ci95"]
        print(f"{row['strategy']:<12} {row['learning_rate']:>8.0e} {row['accuracy']:>9.4f} {f'{low:.3f}-{high:.3f}':>15} "
              f"{100 * (row['accuracy'] - reference):>+12.1f}p {row['train_seconds']:>8.1f}")


if __name__ == "__main__":
    main()
