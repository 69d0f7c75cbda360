"""Callbacks: no-op base hooks, on_fit_end, and state that checkpoints carry through a resume."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from transferkit.core.config import TrainingConfig
from transferkit.core.contracts import Callback
from transferkit.data import read_table, to_examples
from transferkit.data.collate import PaddingCollator
from transferkit.models.loading import load_backbone
from transferkit.strategies import Finetune
from transferkit.tasks import ClassificationTask
from transferkit.testing import write_toy_csv
from transferkit.training import Trainer, seed_everything


class Counter(Callback):
    """Counts optimiser steps across a resume; remembers whether on_fit_end ran."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.steps, self.ended, self.loaded, self.crash_at = 0, False, None, crash_at

    def on_step_end(self, state: Any, model: Any, losses: Any) -> None:
        self.steps += 1
        if self.steps == self.crash_at:
            raise RuntimeError("simulated crash")

    def on_fit_end(self, state: Any, model: Any) -> None:
        self.ended = True

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loaded = dict(state)
        self.steps = int(state.get("steps", 0))


def test_callback_state_is_checkpointed_and_restored(tiny_model, tmp_path) -> None:
    examples, labels = to_examples(read_table(write_toy_csv(str(tmp_path / "t.csv"), 64, seed=0)), "sentence", "label")
    loaded = load_backbone(tiny_model)
    task = ClassificationTask(labels=labels.names)
    strategy = Finetune()
    collator = PaddingCollator(loaded.tokenizer.pad_token_id)
    features = {"train": task.featurize(examples, loaded.tokenizer, 32)}
    checkpoint = str(tmp_path / "checkpoint")

    def fit(resume: bool, counter: Counter) -> None:
        seed_everything(0)
        config = TrainingConfig(epochs=2, batch_size=16, learning_rate=1e-3, progress=False, checkpoint_every=2)
        model = strategy.prepare(task.build_model(load_backbone(tiny_model)))
        Trainer(strategy, config, checkpoint_dir=checkpoint, callbacks=[counter]).fit(
            model, strategy.batch_source(features, collator, config), resume=resume)

    first = Counter(crash_at=7)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(False, first)
    assert not first.ended
    with open(os.path.join(checkpoint, "trainer_state.json")) as handle:
        assert json.load(handle)["callbacks"]["Counter"] == {"steps": 6}  # the last checkpoint (every 2 steps)
    second = Counter()
    fit(True, second)  # continues from step 6 of 8
    assert second.loaded == {"steps": 6} and second.steps == 8 and second.ended
    assert Callback().state_dict() == {} and Callback().on_fit_end(None, None) is None
