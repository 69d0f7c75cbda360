"""``training.mixed_precision: auto``: bf16 autocast in training and inference where the CPU has native bf16,
fp32 where it has not, decided again on the machine that loads the model."""

from __future__ import annotations

import numpy as np

from transferkit.core import machine
from transferkit.core.contracts import TextExamples
from transferkit.experiments.api import train
from transferkit.serving import load_predictor
from transferkit.testing.toy import NEGATIVE, NEUTRAL, POSITIVE
from transferkit.training import trainer as trainer_module


def _config(tiny_model: str, toy_files: dict, output: str) -> dict:
    return {"model": tiny_model, "strategy": "finetune", "output": output,
            "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence"},
            "training": {"epochs": 2, "batch_size": 16, "learning_rate": 1e-3, "mixed_precision": "auto",
                         "checkpoint_every": 0, "progress": False}}


def test_auto_trains_in_bf16_on_a_bf16_cpu_and_loads_as_fp32_elsewhere(tiny_model, toy_files, tmp_path, monkeypatch):
    used = []
    original = trainer_module.resolve_precision
    monkeypatch.setattr(trainer_module, "resolve_precision", lambda value: used.append(original(value)) or used[-1])
    monkeypatch.setattr(machine, "_flags", lambda: ["avx2", "avx512f", "avx512_bf16"])
    result = train(_config(tiny_model, toy_files, str(tmp_path / "run")))
    assert used == ["bf16"]
    assert result.metrics["eval"]["accuracy"] > 0.7  # the toy task is learnt under bf16 autocast

    predictor = load_predictor(str(tmp_path / "run"))
    assert predictor.meta["precision"] == "auto"  # the request is saved, resolved per machine
    texts = TextExamples([" ".join(words) for words in (POSITIVE[:3], NEGATIVE[:3], POSITIVE[1:] + NEUTRAL[:2])])
    in_bf16 = predictor.predict(texts)
    monkeypatch.setattr(machine, "_flags", lambda: ["avx2"])
    in_fp32 = predictor.predict(texts)
    assert not np.array_equal(in_bf16, in_fp32)  # bf16 rounding shows: the autocast really changed
    np.testing.assert_allclose(in_bf16, in_fp32, atol=0.05)


def test_auto_is_fp32_on_a_cpu_without_bf16(tiny_model, toy_files, tmp_path, monkeypatch):
    used = []
    original = trainer_module.resolve_precision
    monkeypatch.setattr(trainer_module, "resolve_precision", lambda value: used.append(original(value)) or used[-1])
    monkeypatch.setattr(machine, "_flags", lambda: ["avx2", "fma"])
    config = _config(tiny_model, toy_files, str(tmp_path / "run"))
    config["training"]["epochs"] = 1
    train(config)
    assert used == ["no"]
