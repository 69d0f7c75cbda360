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


PEOPLE = ["alice", "bob", "carol"]
PLACES = [["paris"], ["rome"], ["new", "york"]]


def toy_tagged_sentences(n: int, seed: int = 0) -> list[list[tuple[str, str]]]:
    """``n`` sentences of (token, IOB2 tag): people are PER, places LOC (``new york`` spans two tokens)."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        chunks: list[list[tuple[str, str]]] = [[(rng.choice(NEUTRAL), "O")] for _ in range(rng.randint(2, 12))]
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.5:
                entity = [(rng.choice(PEOPLE), "B-PER")]
            else:
                place = rng.choice(PLACES)
                entity = [(w, "B-LOC" if i == 0 else "I-LOC") for i, w in enumerate(place)]
            chunks.insert(rng.randint(0, len(chunks)), entity)
        sentences.append([pair for chunk in chunks for pair in chunk])
    return sentences


def write_toy_conll(path: str, n: int, seed: int = 0) -> str:
    """A CoNLL file (``token POS tag``, ``-DOCSTART-`` first, blank lines between sentences)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    lines = ["-DOCSTART- -X- O", ""]
    for sentence in toy_tagged_sentences(n, seed):
        lines += [f"{token} NN {tag}" for token, tag in sentence] + [""]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return path


def write_toy_squad(path: str, n: int, seed: int = 0, articles: int = 4) -> str:
    """A SQuAD v1.1 JSON file: contexts of filler words with one person; the question asks who."""
    import json

    rng = random.Random(seed)
    data = []
    for article in range(articles):
        paragraphs = []
        for index in range(article, n, articles):
            before = " ".join(rng.choice(NEUTRAL) for _ in range(rng.randint(1, 10)))
            after = " ".join(rng.choice(NEUTRAL) for _ in range(rng.randint(1, 10)))
            name = rng.choice(PEOPLE)
            context = f"{before} {name} {after}"
            answer = {"text": name, "answer_start": len(before) + 1}
            paragraphs.append({"context": context, "qas": [{"id": f"q{index}", "question": "who is in the film",
                                                             "answers": [answer]}]})
        data.append({"title": f"article {article}", "paragraphs": paragraphs})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"version": "1.1", "data": data}, handle)
    return path


def toy_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (document, summary) pairs: the summary names the document's person and place, in order."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        person, place = rng.choice(PEOPLE), " ".join(rng.choice(PLACES))
        words = [rng.choice(NEUTRAL) for _ in range(rng.randint(4, 16))]
        at = rng.randint(0, len(words) - 2)
        words[at:at] = [person, "went", "to", place]
        pairs.append((" ".join(words), f"{person} went to {place}"))
    return pairs


def write_toy_pairs(path: str, n: int, seed: int = 0) -> str:
    """A JSONL summarization file with ``document`` and ``summary`` fields."""
    import json

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for document, summary in toy_pairs(n, seed):
            handle.write(json.dumps({"document": document, "summary": summary}) + "\n")
    return path
