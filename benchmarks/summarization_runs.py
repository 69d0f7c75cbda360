"""Paired ROUGE comparison of two finished summarization runs on the same held-out documents.

    python benchmarks/summarization_runs.py runs/xsum-finetune runs/xsum-scratch

Both models are loaded from disk and summarise the eval split of the first run (rebuilt from its
config.yaml, so the documents are the ones training held out). Prints ROUGE-1/2/L of each run, of
the lead-1 baseline, and the paired per-document difference (first − second) of ROUGE-L with a
percentile bootstrap 95% CI and the share of documents where the first run is better, plus three
example summaries.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from transferkit.core.config import DataConfig, build_dataclass, read_yaml_file  # noqa: E402
from transferkit.data.seq2seq import lead_sentences  # noqa: E402
from transferkit.data.task_splits import load_seq2seq_splits  # noqa: E402
from transferkit.evaluation.bootstrap import bootstrap_mean_ci  # noqa: E402
from transferkit.evaluation.rouge import rouge_example_scores  # noqa: E402
from transferkit.serving import load_predictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args()
    config = read_yaml_file(os.path.join(args.first, "config.yaml"), "config")
    predictor = load_predictor(args.first)
    data = build_dataclass(DataConfig, config["data"], "data")
    documents = load_seq2seq_splits(data, config["training"]["seed"], predictor.task.config).eval
    references = list(documents.targets)
    scores = {}
    outputs = {}
    for run in (args.first, args.second):
        outputs[run] = (predictor if run == args.first else load_predictor(run)).predict(documents)
        scores[run] = rouge_example_scores(outputs[run], references)
    scores["lead-1"] = rouge_example_scores([lead_sentences(d, 1) for d in documents.sources], references)
    print(f"{len(references)} held-out documents")
    print(f"{'':28} {'ROUGE-1':>8} {'ROUGE-2':>8} {'ROUGE-L':>8}")
    for name, values in scores.items():
        print(f"{name:28} " + " ".join(f"{100 * values[m].mean():8.2f}" for m in ("rouge1", "rouge2", "rougeL")))
    difference = scores[args.first]["rougeL"] - scores[args.second]["rougeL"]
    low, high = bootstrap_mean_ci(difference, n_resamples=2000)
    print(f"ROUGE-L {args.first} - {args.second}: {100 * difference.mean():+.2f} "
          f"(95% CI {100 * low:+.2f} to {100 * high:+.2f}); first better on "
          f"{np.mean(difference > 0):.0%}, worse on {np.mean(difference < 0):.0%} of documents")
    for index in range(3):
        print(f"\nreference: {references[index]}")
        for run in (args.first, args.second):
            print(f"{run}: {outputs[run][index]}")


if __name__ == "__main__":
    main()
