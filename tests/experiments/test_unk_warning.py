"""The [UNK]-rate guard runs at train time (train and each test set) and on every predict path, for every task."""

from __future__ import annotations

import csv
import logging

import pytest

from transferkit.core.config import RunConfig
from transferkit.experiments.api import evaluate_run, load, predict_file
from transferkit.experiments.run import train
from transferkit.testing import write_toy_csv

CHINESE = ["这部电影很好看", "外卖送得太慢了", "服务态度很差", "房间干净舒服"]


def _write_chinese(path, labels: list[str]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        writer.writerows([text, labels[i % len(labels)]] for i, text in enumerate(CHINESE * 5))
    return str(path)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "map to [UNK]" in r.getMessage()]


@pytest.fixture(scope="module")
def english_run(tmp_path_factory, tiny_model) -> tuple[str, str, str, str]:
    root = tmp_path_factory.mktemp("unk_run")
    train_file = write_toy_csv(str(root / "train.csv"), 80, 0)
    with open(train_file, encoding="utf-8") as handle:
        labels = sorted({row["label"] for row in csv.DictReader(handle)})
    chinese = _write_chinese(root / "zh.csv", labels)
    return str(root), chinese, train_file, tiny_model


def test_train_warns_for_the_chinese_test_set_only(english_run, caplog):
    root, chinese, train_file, tiny_model = english_run
    config = RunConfig.from_dict({
        "model": tiny_model, "strategy": "finetune", "output": f"{root}/run",
        "data": {"train": train_file, "test": {"en": train_file, "zh": chinese}, "text_column": "sentence",
                 "max_length": 32},
        "training": {"epochs": 1, "batch_size": 16, "progress": False, "checkpoint_every": 0},
    })
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        train(config)
    found = _warnings(caplog)
    assert len(found) == 1, found
    assert found[0].startswith("100% of tokens of data.test.zh map to [UNK] under ")
    assert "--model multilingual-e5-small" in found[0]


def test_predict_paths_warn(english_run, caplog, tmp_path):
    root, chinese, train_file, _ = english_run
    run_dir = f"{root}/run"
    model = load(run_dir)
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        model.predict(["a gripping film"])
        assert not _warnings(caplog)
        assert len(model.predict(CHINESE)) == len(CHINESE)
        assert len(model.predict_proba(CHINESE)) == len(CHINESE)
        assert predict_file(run_dir, chinese, str(tmp_path / "out.jsonl")) == len(CHINESE) * 5
        evaluate_run(run_dir, chinese)
    found = _warnings(caplog)
    assert [m.split(" map to")[0] for m in found] == [
        "100% of tokens of the predict() inputs", "100% of tokens of the predict() inputs",
        f"100% of tokens of {chinese}", f"100% of tokens of {chinese}"]


def test_unk_warning_zero_is_saved_and_disables_predict_checks(english_run, caplog):
    root, chinese, train_file, tiny_model = english_run
    config = RunConfig.from_dict({
        "model": tiny_model, "strategy": "finetune", "output": f"{root}/quiet",
        "data": {"train": train_file, "test": chinese, "text_column": "sentence", "max_length": 32,
                 "unk_warning": 0},
        "training": {"epochs": 1, "batch_size": 16, "progress": False, "checkpoint_every": 0},
    })
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        train(config)
        load(f"{root}/quiet").predict(CHINESE)
    assert not _warnings(caplog)
