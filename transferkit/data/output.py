"""Prediction records (label + per-class probabilities) and writing them as JSONL or CSV, atomically."""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from transferkit.core.atomic import atomic_open
from transferkit.core.errors import UserError


def write_predictions(path: str, texts: list[str], probabilities: np.ndarray, labels: list[str]) -> None:
    """One row per text: ``text``, ``label`` (argmax) and ``prob_<label>`` for every class."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".jsonl", ".csv", ".tsv"):
        raise UserError(f"--output {path}: use a .jsonl, .csv or .tsv file name")
    predicted = probabilities.argmax(axis=1)
    with atomic_open(path, newline="") as handle:
        if extension == ".jsonl":
            for record in prediction_records(texts, probabilities, labels):
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            writer = csv.writer(handle, delimiter="\t" if extension == ".tsv" else ",")
            writer.writerow(["text", "label", *[f"prob_{label}" for label in labels]])
            for text, index, row in zip(texts, predicted, probabilities, strict=True):
                writer.writerow([text, labels[index], *[f"{p:.6f}" for p in row]])


def prediction_records(texts: list[str], probabilities: np.ndarray, labels: list[str]) -> list[dict]:
    """One JSON-ready record per text: ``text``, ``label`` (argmax) and ``probabilities`` (label -> float)."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    return [{"text": text, "label": labels[index], "probabilities": dict(zip(labels, map(float, row), strict=True))}
            for text, index, row in zip(texts, predicted, probabilities, strict=True)]


def write_records(path: str, records: list[dict]) -> None:
    """One JSON object per line (e.g. tagged sentences with their entities), written atomically."""
    if os.path.splitext(path)[1].lower() != ".jsonl":
        raise UserError(f"--output {path}: predictions of this task are written as JSON Lines; use a .jsonl file name")
    with atomic_open(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
