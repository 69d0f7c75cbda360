"""The cross-lingual gap of an XNLI run on the *same* held-out pairs in both languages.

``examples/xnli_en_zh.yaml`` trains on 90% of the English XNLI dev pairs and tests on all of
``dev-zh.tsv``, the Chinese translation of the same pairs: 90% of those Chinese pairs are
translations of training pairs, which flatters the Chinese figure.  This script rebuilds the run's
eval split (same ``split_seed``), takes the Chinese translations of exactly those held-out rows, and
evaluates the saved run on both; it prints English held-out, Chinese on the same rows, Chinese on
all rows, and the gaps.

    python benchmarks/xnli_heldout_gap.py RUN_DIR [--chinese ../shared/data/xnli_en_zh/dev-zh.tsv]

A benchmark, not a test: the exit code is 0 unless the run or the files cannot be read.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def held_out_rows(run_dir: str) -> tuple[list[int], str]:
    """1-based line numbers of the run's eval split in its (headerless) training file, and that file."""
    from transferkit.experiments.api import load_config_file
    from transferkit.experiments.run import components

    config = load_config_file(os.path.join(run_dir, "config.yaml"))
    parts = components(config)
    splits = parts.task_cls.read_splits(config.data, parts.task_config, config.training.seed)
    return list(splits.eval.rows), str(config.data.train)


def subset(path: str, rows: list[int], folder: str) -> str:
    """The given 1-based lines of ``path`` as a new file in ``folder``."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    target = os.path.join(folder, "subset-" + os.path.basename(path))
    with open(target, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines[row - 1] for row in rows) + "\n")
    return target


def main() -> None:
    import transferkit

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--chinese", default=None, help="the Chinese translation, line-aligned with the training file")
    args = parser.parse_args()
    rows, english = held_out_rows(args.run_dir)
    chinese = args.chinese or english.replace("dev-en", "dev-zh")
    with tempfile.TemporaryDirectory() as folder:
        figures = {
            "English, held-out rows": transferkit.evaluate(args.run_dir, subset(english, rows, folder)),
            "Chinese, the same rows": transferkit.evaluate(args.run_dir, subset(chinese, rows, folder)),
            "Chinese, all rows (90% translate training pairs)": transferkit.evaluate(args.run_dir, chinese),
        }
    print(f"{len(rows)} held-out pairs of {english}")
    for name, metrics in figures.items():
        low, high = metrics["ci95"]["accuracy"]
        print(f"  {name:50s} accuracy {metrics['accuracy']:.4f}  95% CI [{low:.3f}, {high:.3f}]"
              f"  (n={metrics['num_examples']})")
    values = [m["accuracy"] for m in figures.values()]
    print(f"  cross-lingual gap on the same rows: {values[0] - values[1]:+.4f}; "
          f"against all Chinese rows: {values[0] - values[2]:+.4f}")


if __name__ == "__main__":
    main()
