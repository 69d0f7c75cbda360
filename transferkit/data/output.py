"""Write predictions (label + per-class probabilities) as JSONL or CSV, atomically."""

from __future__ import annotations

import csv
import json
import os
import tempfile

import numpy as np

from transferkit.core.errors import UserError


def write_predictions(path: str, texts: list[str], probabilities: np.ndarray, labels: list[str]) -> None:
    """One row per text: ``text``, ``label`` (argmax) and ``prob_<label>`` for every class."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".jsonl", ".csv", ".tsv"):
        raise UserError(f"--output {path}: use a .jsonl, .csv or .tsv file name")
    predicted = probabilities.argmax(axis=1)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, encoding="utf-8", newline="",
                                     suffix=".tmp") as handle:
        if extension == ".jsonl":
            for text, index, row in zip(texts, predicted, probabilities, strict=True):
                record = {"text": text, "label": labels[index], "probabilities": dict(zip(labels, map(float, row), strict=True))}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            writer = csv.writer(handle, delimiter="\t" if extension == ".tsv" else ",")
            writer.writerow(["text", "label", *[f"prob_{label}" for label in labels]])
            for text, index, row in zip(texts, predicted, probabilities, strict=True):
                writer.writerow([text, labels[index], *[f"{p:.6f}" for p in row]])
    os.replace(handle.name, path)


def write_records(path: str, records: list[dict]) -> None:
    """One JSON object per line (e.g. tagged sentences with their entities), written atomically."""
    if os.path.splitext(path)[1].lower() != ".jsonl":
        raise UserError(f"--output {path}: predictions of this task are written as JSON Lines; use a .jsonl file name")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, encoding="utf-8", suffix=".tmp") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(handle.name, path)
