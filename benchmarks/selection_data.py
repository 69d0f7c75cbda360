"""The datasets of ``selection.py``: seeded, disjoint train / eval / test files drawn from ``../shared/data``.

Protocol (fixed before any result was seen): each dataset gives 1,000 labelled training examples (what
``select`` scores and what the ground-truth runs train on), 200 eval examples (per-epoch evaluation and the
best-checkpoint choice of the ground-truth runs) and 500 test examples (the ground truth), drawn with
``random.Random(0)`` without overlap.

* ``sst2`` — English sentiment (GLUE SST-2 train.tsv), 2 classes;
* ``trec`` — English question type (TREC coarse labels), 6 classes;
* ``waimai`` — Chinese sentiment (waimai_10k food-delivery reviews), 2 classes;
* ``conll`` — English NER (CoNLL-2003; train from eng.train, eval and test from eng.testa), entity F1.
"""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIZES = {"train": 1000, "eval": 200, "test": 500}


def shared_data() -> Path:
    root = Path(os.environ.get("TRANSFERKIT_SHARED", REPO.parent / "shared")) / "data"
    if not root.is_dir():
        raise SystemExit(f"selection benchmark: {root} not found (set TRANSFERKIT_SHARED)")
    return root


def _draw(rows: list, seed: int = 0) -> dict[str, list]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    splits, start = {}, 0
    for name, size in SIZES.items():
        splits[name] = [rows[i] for i in order[start: start + size]]
        start += size
    return splits


def _write_tsv(path: Path, rows: list[tuple[str, str]]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows((" ".join(text.split()), label) for text, label in rows)
    return str(path)


def _sst2(root: Path) -> list[tuple[str, str]]:
    with open(root / "sst2" / "train.tsv", encoding="utf-8", newline="") as handle:
        rows = [(r["sentence"], r["label"].strip()) for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return [row for row in rows if len(row[0].split()) >= 4]  # whole sentences rather than SST's short phrases


def _trec(root: Path) -> list[tuple[str, str]]:
    rows = []
    with open(root / "trec" / "train_5500.label.txt", encoding="latin-1") as handle:
        for line in handle:
            label, _, question = line.strip().partition(" ")
            rows.append((question, label.split(":")[0]))
    return rows


def _waimai(root: Path) -> list[tuple[str, str]]:
    with open(root / "waimai_10k" / "waimai_10k.csv", encoding="utf-8", newline="") as handle:
        return [(r["review"], r["label"]) for r in csv.DictReader(handle) if r["review"].strip()]


def _conll_sentences(path: Path) -> list[list[str]]:
    sentences, current = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("-DOCSTART-"):
                continue
            if not line.strip():
                if current:
                    sentences.append(current)
                current = []
            else:
                current.append(line.rstrip("\n"))
    if current:
        sentences.append(current)
    return sentences


def _write_conll(path: Path, sentences: list[list[str]]) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        for sentence in sentences:
            handle.write("\n".join(sentence) + "\n\n")
    return str(path)


def _conll(root: Path, out: Path) -> dict[str, str]:
    train = _conll_sentences(root / "conll2003_en" / "eng.train")
    held = _conll_sentences(root / "conll2003_en" / "eng.testa")
    train_rows = _draw(train)["train"]
    order = list(range(len(held)))
    random.Random(0).shuffle(order)
    eval_rows = [held[i] for i in order[: SIZES["eval"]]]
    test_rows = [held[i] for i in order[SIZES["eval"]: SIZES["eval"] + SIZES["test"]]]
    return {name: _write_conll(out / f"{name}.conll", rows)
            for name, rows in (("train", train_rows), ("eval", eval_rows), ("test", test_rows))}


DATASETS = {"sst2": ("classification", _sst2), "trec": ("classification", _trec),
            "waimai": ("classification", _waimai), "conll": ("token_classification", None)}
LANGUAGE = {"sst2": "en", "trec": "en", "waimai": "zh", "conll": "en"}


def prepare(out: str, names: list[str]) -> dict[str, dict[str, str]]:
    """Write each dataset's three files under ``out/data/NAME``; returns {name: {task, train, eval, test, ...}}."""
    root = shared_data()
    files = {}
    for name in names:
        task, reader = DATASETS[name]
        directory = Path(out) / "data" / name
        directory.mkdir(parents=True, exist_ok=True)
        if reader is None:
            paths = _conll(root, directory)
            files[name] = {"task": task, **paths, "format": "conll"}
        else:
            splits = _draw(reader(root))
            paths = {split: _write_tsv(directory / f"{split}.tsv", rows) for split, rows in splits.items()}
            files[name] = {"task": task, **paths, "text_column": "text", "label_column": "label"}
    return files
