"""What fine-tuning a multilingual encoder costs: multilingual-e5-small (XLM-R vocabulary, 250k rows)
with its word embeddings frozen (finetune's default for vocabularies >= 100k rows) and trainable,
against minilm-l6 (30k rows), on the same sentences.

    python benchmarks/multilingual_finetune_cost.py [--train-size 1600] [--max-length 64]

Each configuration runs in its own process (``--only NAME``) so peak RSS belongs to it. The timed
part is ``Trainer.fit`` alone (no evaluation inside), wired as ``experiments/run.py`` wires it; then
accuracy on held-out sentences.  Printed: samples/s, trainable parameters, AdamW state (two moments
per trainable parameter, fp32), peak RSS, accuracy, the CPU's flags and the 1-minute load average.
A benchmark, not a test: the exit code is 0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TRANSFERKIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
CONFIGS = {  # name -> (model, finetune options)
    "minilm-l6": ("minilm-l6", {}),
    "e5 (word embeddings frozen, default)": ("multilingual-e5-small", {}),
    "e5 (word embeddings trained)": ("multilingual-e5-small", {"freeze_word_embeddings": "false"}),
}


def sentences(args: argparse.Namespace) -> tuple[list[str], list[str], list[str], list[str]]:
    with open(os.path.join(SHARED, "data", "sst2", "train.tsv"), encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle][1:]
    rows = rows[:: max(1, len(rows) // (args.train_size + args.eval_size))]
    train, held_out = rows[: args.train_size], rows[args.train_size: args.train_size + args.eval_size]
    return [t for t, _ in train], [y for _, y in train], [t for t, _ in held_out], [y for _, y in held_out]


def child(name: str, args: argparse.Namespace) -> dict:
    import numpy as np

    from transferkit.core.config import RunConfig, TrainingConfig
    from transferkit.core.contracts import TextExamples
    from transferkit.data import PaddingCollator
    from transferkit.experiments.run import components
    from transferkit.modules.inference import run_batches
    from transferkit.training import Trainer, seed_everything

    model_ref, options = CONFIGS[name]
    config = RunConfig.from_dict({"model": model_ref, "strategy": {"name": "finetune", **options}})
    strategy = components(config).strategy
    train_texts, train_labels, eval_texts, eval_labels = sentences(args)
    names = sorted(set(train_labels))
    task = components(config).task_cls(components(config).task_config, names)
    seed_everything(0)
    loaded = strategy.load_source(model_ref, TextExamples(train_texts, None))
    model = strategy.prepare(task.build_model(loaded, 0))
    collator = PaddingCollator(loaded.tokenizer.pad_token_id or 0)
    labels = [names.index(y) for y in train_labels]
    features = task.featurize(TextExamples(train_texts, labels), loaded.tokenizer, args.max_length)
    training = strategy.resolve_training(TrainingConfig(epochs=1, batch_size=32, progress=False, checkpoint_every=0))
    batches = strategy.batch_source({"train": features}, collator, training)
    started = time.perf_counter()
    Trainer(strategy, training).fit(model, batches)
    seconds = time.perf_counter() - started
    model.eval()
    held_out = task.featurize(TextExamples(eval_texts, None), loaded.tokenizer, args.max_length)
    logits = run_batches(lambda b: model(b)["logits"], held_out, collator, 128)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"samples_per_second": len(train_texts) / seconds, "train_seconds": seconds, "trainable": trainable,
            "total": sum(p.numel() for p in model.parameters()), "adam_state_mb": 2 * 4 * trainable / 2**20,
            "accuracy": float(np.mean(np.asarray(logits).argmax(1) == np.asarray([names.index(y) for y in eval_labels]))),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "load": os.getloadavg()[0], "learning_rate": training.learning_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=1600)
    parser.add_argument("--eval-size", type=int, default=800)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--only", choices=list(CONFIGS))
    args = parser.parse_args()
    if args.only:
        print("RESULT " + json.dumps(child(args.only, args)))
        return
    from transferkit.core.machine import cpu_flags

    print(f"CPU flags: {cpu_flags()}; torch threads: default; {args.train_size} SST-2 sentences, 1 epoch, batch 32, "
          f"max length {args.max_length}, finetune's default learning rate")
    results = {}
    for name in CONFIGS:
        command = [sys.executable, __file__, "--only", name, "--train-size", str(args.train_size),
                   "--eval-size", str(args.eval_size), "--max-length", str(args.max_length)]
        output = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True).stdout
        results[name] = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
    print(f"{'configuration':<38}{'samples/s':>10}{'trainable':>13}{'AdamW MB':>10}{'peak RSS MB':>12}"
          f"{'accuracy':>10}{'load':>6}")
    for name, row in results.items():
        print(f"{name:<38}{row['samples_per_second']:>10.1f}{row['trainable']:>13,}{row['adam_state_mb']:>10.0f}"
              f"{row['peak_rss_mb']:>12.0f}{row['accuracy']:>10.3f}{row['load']:>6.1f}")
    base = results["minilm-l6"]["samples_per_second"]
    for name, row in list(results.items())[1:]:
        print(f"{name} / minilm-l6 samples/s: {row['samples_per_second'] / base:.2f}x")


if __name__ == "__main__":
    main()
