"""Toy labelled data a tiny model can learn in seconds (for contract tests)."""

from __future__ import annotations

import csv
import os
import random

POSITIVE = ["good", "great", "fine", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
NEUTRAL = ["movie", "film", "plot", "the", "a", "was", "is", "actor"]
TOY_WORDS = POSITIVE + NEGATIVE + NEUTRAL


def toy_sentences(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (sentence, label) pairs; the label is decided by sentiment words, lengths vary 3..24."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        cue = POSITIVE if label == "pos" else NEGATIVE
        words = [rng.choice(NEUTRAL) for _ in range(rng.randint(2, 20))]
        for _ in range(rng.randint(1, 4)):
            words.insert(rng.randint(0, len(words)), rng.choice(cue))
        rows.append((" ".join(words), label))
    return rows


def write_toy_csv(path: str, n: int, seed: int = 0, text_column: str = "sentence") -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([text_column, "label"])
        writer.writerows(toy_sentences(n, seed))
    return path
