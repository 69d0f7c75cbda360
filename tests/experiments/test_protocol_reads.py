"""At run time, the wiring (experiments/, serving/, cli/) reads nothing of a strategy outside its protocol.

``tests/test_architecture.py`` checks the source text; this records every attribute a real run reads from a
strategy instance, by caller module, so a read the static rule cannot see (through another name) fails too.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from transferkit.experiments.api import evaluate_run, train
from transferkit.strategies import STRATEGIES
from transferkit.strategies.base import PROTOCOL

WIRING = ("transferkit.experiments", "transferkit.serving", "transferkit.cli")


def recording(cls: type, reads: list[tuple[str, str]]) -> type:
    """``cls`` whose instances note every attribute read from a wiring module, with the reader."""

    class Recording(cls):  # type: ignore[misc, valid-type]
        def __getattribute__(self, attr: str) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith(WIRING):
                reads.append((caller, attr))
            return super().__getattribute__(attr)

    Recording.__name__ = cls.__name__
    return Recording


@pytest.mark.parametrize("strategy", ["finetune", "tfidf", "lora", "dann", "feature_extraction", "contrastive"])
def test_a_run_reads_only_the_strategy_protocol(strategy: str, tiny_model: str, toy_files, tmp_path,
                                                monkeypatch) -> None:
    reads: list[tuple[str, str]] = []
    monkeypatch.setitem(STRATEGIES._items, strategy, recording(STRATEGIES.get(strategy), reads))
    output = str(tmp_path / "run")
    result = train({"model": tiny_model, "strategy": strategy, "output": output,
                    "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence",
                             "max_length": 32, "sources": {name: toy_files["eval"]
                                                           for name in STRATEGIES.get(strategy).requires}},
                    "training": {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "progress": False,
                                 "checkpoint_every": 0}})
    evaluate_run(output, toy_files["eval"])  # loading the saved model (a LoRA delta is rebuilt by serving)
    assert result.metrics["eval"]["accuracy"] >= 0.0
    delta_hooks = {"prepare", "merge"}  # serving rebuilds and folds a saved delta (DeltaStrategy)
    outside = sorted({(caller, attr) for caller, attr in reads
                      if attr not in PROTOCOL | (delta_hooks if caller.startswith("transferkit.serving") else set())})
    assert reads and not outside, outside


def test_the_card_of_a_run_without_a_pretrained_model_says_so(toy_files, tmp_path) -> None:
    output = str(tmp_path / "tfidf")
    train({"strategy": "tfidf", "output": output,
           "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence"}})
    with open(f"{output}/card.md", encoding="utf-8") as handle:
        card = handle.read()
    assert "- none (TF-IDF baseline)" in card and "reference:" not in card


def test_run_level_callbacks_see_every_epochs_evaluation(tiny_model: str, toy_files, tmp_path) -> None:
    """What a tuner's pruner needs: ``train(config, callbacks=[...])`` joins the main stage's Trainer."""
    from transferkit.core.config import RunConfig
    from transferkit.core.contracts import Callback
    from transferkit.experiments.run import train as run_train

    class Seen(Callback):
        def __init__(self) -> None:
            self.evaluations: list[float] = []

        def on_evaluate(self, state: Any, model: Any, metrics: dict[str, Any]) -> None:
            self.evaluations.append(metrics["accuracy"])

    seen = Seen()
    config = RunConfig.from_dict({"model": tiny_model, "strategy": "finetune", "output": str(tmp_path / "run"),
                                  "data": {"train": toy_files["train"], "eval": toy_files["eval"],
                                           "text_column": "sentence", "max_length": 32},
                                  "training": {"epochs": 2, "batch_size": 16, "progress": False, "checkpoint_every": 0}})
    result = run_train(config, callbacks=[seen])
    assert len(seen.evaluations) == 2
    assert [e["eval"]["accuracy"] for e in result.history if "eval" in e] == seen.evaluations
