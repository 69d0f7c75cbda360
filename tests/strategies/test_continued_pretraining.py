"""dapt / tapt / udalm: the masked-LM stage lowers held-out loss, is cached and shared, saves a usable encoder."""

from __future__ import annotations

import json
import logging
import os

import pytest

from transferkit.core.config import RunConfig
from transferkit.core.errors import UserError
from transferkit.experiments.api import train
from transferkit.experiments.run import components
from transferkit.models.loading import load_backbone
from transferkit.modules.masked_lm import MaskedLMHead
from transferkit.strategies.continued_pretraining.stage import MaskedLMConfig, Pretraining, continue_pretraining


def config(strategy: str, toy_files: dict, tiny_model: str, output: str, seed: int = 0, **options) -> dict:
    return {"model": tiny_model, "strategy": {"name": strategy, "mlm_epochs": 4, "mlm_batch_size": 8, "mlm_learning_rate": 3e-3, **options}, "output": output,
            "data": {"train": toy_files["train"], "eval": toy_files["eval"], "max_length": 32, "text_column": "sentence",
                     "sources": {"target_unlabeled": toy_files["eval"]}},
            "training": {"epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "progress": False,
                         "checkpoint_every": 0, "seed": seed}}


@pytest.mark.parametrize("strategy", ["dapt", "udalm"])
def test_without_target_text_the_run_fails_before_any_work(strategy: str, toy_files) -> None:
    raw = {"model": "minilm-l6", "strategy": strategy, "data": {"train": toy_files["train"]}}
    with pytest.raises(UserError, match=r"needs data\.sources\.target_unlabeled"):
        components(RunConfig.from_dict(raw))


@pytest.mark.parametrize("option, value", [("mlm_probability", 0.0), ("heldout_fraction", 1.0), ("mlm_epochs", 0),
                                           ("mlm_weight", 0.0)])
def test_bad_masked_lm_options_fail_before_any_work(option: str, value: float, toy_files) -> None:
    raw = {"model": "minilm-l6", "strategy": {"name": "udalm", option: value},
           "data": {"train": toy_files["train"], "sources": {"target_unlabeled": toy_files["eval"]}}}
    with pytest.raises(UserError, match=option):
        components(RunConfig.from_dict(raw))


def test_an_empty_corpus_is_a_one_line_error(tiny_model: str) -> None:
    loaded = load_backbone(tiny_model)
    with pytest.raises(UserError, match="holds no text"):
        continue_pretraining(None, loaded, ["", "  "], Pretraining("target_unlabeled", MaskedLMConfig()))


def test_dapt_lowers_heldout_mlm_loss_saves_a_startable_encoder_and_is_shared_by_seeds(
        toy_files, tiny_model: str, tmp_path, caplog) -> None:
    first = train(config("dapt", toy_files, tiny_model, str(tmp_path / "seed0")))
    curve = first.metrics["encoder"]["continued_pretraining"]
    points = [p["mlm_loss"] for p in curve["heldout_mlm_loss"]]
    assert len(points) == 1 + 4 and curve["before"] == points[0]
    assert curve["after"] < curve["before"] - 0.1, curve  # the toy's words become predictable
    assert curve["head"].startswith("new")  # the tiny model has no MLM head: one was made, tied to E
    adapted = os.path.join(str(tmp_path / "seed0"), "adapted_encoder")
    assert curve["checkpoint"] == adapted
    loaded = load_backbone(adapted)
    assert MaskedLMHead.for_backbone(loaded.backbone).loaded_from is not None
    assert first.metrics["eval"]["accuracy"] >= 0.8
    with caplog.at_level(logging.INFO, logger="transferkit"):
        second = train(config("dapt", toy_files, tiny_model, str(tmp_path / "seed1"), seed=1))
    assert "continued pretraining: reusing" in caplog.text
    assert second.metrics["encoder"]["continued_pretraining"]["heldout_mlm_loss"] == curve["heldout_mlm_loss"]
    finetuned = train({**config("finetune", toy_files, adapted, str(tmp_path / "from-adapted")),
                       "strategy": "finetune"})  # the adapted encoder is an ordinary source model
    assert finetuned.metrics["eval"]["accuracy"] >= 0.8


def test_udalm_keeps_the_dapt_head_and_logs_task_and_mlm_losses(toy_files, tiny_model: str, tmp_path) -> None:
    raw = config("udalm", toy_files, tiny_model, str(tmp_path / "udalm"), mlm_weight=0.3)
    raw["training"]["epochs"] = 6
    result = train(raw)
    parts = [entry["parts"] for entry in result.history if "parts" in entry]
    assert parts and all({"task", "mlm"} <= set(p) for p in parts)
    assert result.metrics["eval"]["accuracy"] >= 0.8
    with open(os.path.join(str(tmp_path / "udalm"), "model", "transferkit.json"), encoding="utf-8") as handle:
        assert "continued_pretraining" in json.load(handle)["encoder"]


def test_tapt_pretrains_on_the_training_texts(toy_files, tiny_model: str, tmp_path) -> None:
    raw = config("tapt", toy_files, tiny_model, str(tmp_path / "tapt"))
    raw["data"].pop("sources")
    curve = train(raw).metrics["encoder"]["continued_pretraining"]
    assert curve["corpus"] == "train" and curve["texts"] + curve["heldout_texts"] == 240  # every training text


def test_heldout_loss_scores_on_the_models_device() -> None:
    """The held-out MLM loss moves each collated batch to the model's device (ids left on the CPU broke DAPT on a GPU)."""
    import torch

    from transferkit.data.collate import PaddingCollator
    from transferkit.strategies.continued_pretraining.stage import heldout_loss

    class Recorder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1, device="meta"))
            self.devices: set[str] = set()

        def forward(self, batch: dict) -> torch.Tensor:
            self.devices |= {v.device.type for v in batch.values()}
            return torch.tensor(2.0)

    rows = [{"input_ids": [101, 7, 102], "labels": [-100, 7, -100]}, {"input_ids": [101, 102], "labels": [-100, 5]}]
    model = Recorder()
    assert heldout_loss(model, rows, PaddingCollator(0), batch_size=1) == pytest.approx(2.0)
    assert model.devices == {"meta"}
