"""Where a fine-tuning step's time goes, fp32 vs ``mixed_precision=auto`` (bf16 autocast), and what bounds the ratio.

    python benchmarks/bf16_step_profile.py [--train-size 2000] [--threads 0]

Runs the loop of ``finetune_throughput.py`` (``run_transferkit``: MiniLM-L6 on SST-2, batch 32, length-grouped,
fused AdamW, clipping at 1.0; the same split and settings) three times per precision in this one process: a cold
run (the first: bf16 matmuls also pay oneDNN's kernel set-up for every new sequence length, as a real run's first
epoch does), a warm run, and a warm run under ``torch.profiler``, whose self-CPU time per aten op is summed per step
into categories: matrix multiplies (``mm``/``addmm``/``bmm``), the dropout masks' RNG (``bernoulli_``), the AdamW step,
gradient-norm clipping (``linalg_vector_norm`` + ``mul_``), dtype casts (``copy_``), ``fill_`` and everything else.

The bound.  With step times T32 (fp32) and T16 (auto), cutting X ms of precision-independent work (dropout RNG,
optimizer, clipping, dispatch) from both gives (T32 - X) / (T16 - X) >= 1.5 only if X >= 3·T16 - 2·T32; the script
prints that X for the cold and the warm runs beside the categories that would have to supply it.  The benchmark's
contract fixes that work (dropout, AdamW over every parameter including 11.7M word-embedding rows, clipping).

Profiled steps run slower than plain ones (per-op overhead); the categories are shares of the profiled step.  The
timed runs include the eval batch (32 texts).  A benchmark, not a test: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import finetune_throughput as throughput  # noqa: E402  (benchmarks/ sibling)
from throughput_data import load_split  # noqa: E402

CATEGORIES = {"aten::mm": "matmul", "aten::addmm": "matmul", "aten::bmm": "matmul", "aten::bernoulli_": "dropout RNG",
              "aten::_fused_adamw_": "AdamW", "aten::linalg_vector_norm": "clipping", "aten::mul_": "clipping",
              "aten::copy_": "casts (copy_)", "aten::fill_": "fill_"}
ORDER = ("matmul", "dropout RNG", "AdamW", "clipping", "casts (copy_)", "fill_", "other")


def profile_run(args: argparse.Namespace, split, precision: str) -> tuple[list[dict], dict[str, float]]:
    """A cold and a warm plain run (timing) and a profiled run (ms per optimiser step by category)."""
    from torch.profiler import ProfilerActivity, profile

    plain = [throughput.run_transferkit(args, split, precision) for _ in ("cold", "warm")]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        profiled = throughput.run_transferkit(args, split, precision)
    ms = collections.Counter()
    for event in prof.key_averages():
        ms[CATEGORIES.get(event.key, "other")] += event.self_cpu_time_total / 1000 / profiled["steps"]
    return plain, dict(ms)


def report(runs: dict[str, tuple[list[dict], dict[str, float]]]) -> None:
    (fp32, p32), (auto, p16) = runs["no"], runs["auto"]
    print(f"{'ms per step':<16} {'fp32':>8} {auto[0]['precision']:>8}")
    for name in ORDER:
        print(f"{name:<16} {p32.get(name, 0.0):>8.1f} {p16.get(name, 0.0):>8.1f}")
    print(f"{'profiled step':<16} {sum(p32.values()):>8.1f} {sum(p16.values()):>8.1f}")
    print(f"matmuls {p32['matmul'] / p16['matmul']:.2f}x faster in bf16; accuracy {fp32[0]['accuracy']:.4f} vs "
          f"{auto[0]['accuracy']:.4f}; {fp32[0]['padded_tokens'] / fp32[0]['batches']:.0f} tokens per batch")
    for index, name in enumerate(("cold", "warm")):
        t32, t16 = (1000 * run[index]["train_seconds"] / run[index]["steps"] for run in (fp32, auto))
        print(f"{name}: fp32 {t32:.1f} ms/step, auto {t16:.1f} -> {t32 / t16:.2f}x; 1.5x needs X >= 3*T16 - 2*T32 = "
              f"{3 * t16 - 2 * t32:.1f} ms of common work cut from both steps")


def main(argv: list[str] | None = None) -> int:
    import torch
    import transformers

    from transferkit.core.machine import cpu_flags

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    own, rest = parser.parse_known_args(argv)
    args = throughput.parse_args(["--train-size", str(own.train_size), "--eval-size", "32", *rest])
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if own.threads > 0:
        torch.set_num_threads(own.threads)
    split = load_split(args)
    started = time.perf_counter()
    runs = {precision: profile_run(args, split, precision) for precision in ("no", "auto")}
    print(f"bf16 step profile: MiniLM-L6, {split.source}, train {len(split.train_texts)}, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}; CPU {cpu_flags()}; load {os.getloadavg()[0]:.1f}")
    report(runs)
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
