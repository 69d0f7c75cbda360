"""dann / coral / mmd / pseudo_label: required target text, bad weights, the same-text warning, the discriminator monitor."""

from __future__ import annotations

import logging

import pytest

from transferkit.core.config import RunConfig
from transferkit.core.contracts import Losses, TrainState
from transferkit.core.errors import UserError
from transferkit.experiments.run import components
from transferkit.strategies.dann import Dann, DannConfig, DomainMonitor
from transferkit.strategies.domain_alignment import warn_if_same_text
from transferkit.strategies.mmd import Mmd, MmdConfig
from transferkit.strategies.pseudo_label import PseudoLabel, PseudoLabelConfig


@pytest.mark.parametrize("strategy", ["dann", "coral", "mmd", "pseudo_label"])
def test_a_domain_adaptation_run_without_target_text_fails_before_any_work(strategy: str, toy_files) -> None:
    config = RunConfig.from_dict({"model": "minilm-l6", "strategy": strategy, "data": {"train": toy_files["train"]}})
    with pytest.raises(UserError, match=r"needs data\.sources\.target_unlabeled"):
        components(config)


def test_alignment_weight_must_be_positive() -> None:
    with pytest.raises(UserError, match=r"strategy\.weight=0"):
        Mmd(MmdConfig(weight=0.0)).prepare(None)


def test_pseudo_label_threshold_must_be_a_probability() -> None:
    with pytest.raises(UserError, match=r"strategy\.threshold=1\.5"):
        PseudoLabel(PseudoLabelConfig(threshold=1.5)).prepare(None)


def test_target_text_identical_to_the_source_warns(caplog) -> None:
    rows = [{"input_ids": [101, i, 102]} for i in range(10)]
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        assert warn_if_same_text(rows, rows[:8]) == 1.0
    assert "target_unlabeled also occurs in data.train" in caplog.text
    caplog.clear()
    assert warn_if_same_text(rows, [{"input_ids": [101, 99, 102]}]) == 0.0
    assert not caplog.text


def test_monitor_feeds_the_schedule_logs_accuracy_and_flags_a_discriminator_at_chance(caplog) -> None:
    from types import SimpleNamespace

    alignment = SimpleNamespace(progress=0.0)  # the alignment module, whose schedule reads the progress
    model = SimpleNamespace(auxiliary={"alignment": alignment})
    monitor = DomainMonitor()
    state = TrainState(total_steps=10)
    monitor.on_fit_start(state, model)
    with caplog.at_level(logging.INFO, logger="transferkit"):
        for step in range(1, 6):
            state.step = step
            monitor.on_step_end(state, model, Losses(None, {"task": 0.5, "align": 0.693, "domain_accuracy": 0.51}))
        assert alignment.progress == 0.5
        monitor.on_epoch_start(state, model)
    entry = state.history[-1]["domain"]
    assert entry["accuracy"] == pytest.approx(0.51) and entry["loss"] == pytest.approx(0.693)
    assert "at chance" in caplog.text
    restored = DomainMonitor()
    restored.load_state_dict(monitor.state_dict())
    assert restored.first_epoch == pytest.approx(0.51)


def test_the_dann_discriminator_trains_at_the_head_rate_unless_scaled() -> None:
    assert Dann(DannConfig()).auxiliary_learning_rate(1e-4, 2e-4) == pytest.approx(2e-4)
    assert Dann(DannConfig(discriminator_lr_scale=10.0)).auxiliary_learning_rate(1e-4, 2e-4) == pytest.approx(1e-3)
    assert Mmd(MmdConfig()).auxiliary_learning_rate(1e-4, 2e-4) == pytest.approx(2e-4)


@pytest.mark.parametrize(("strategy", "keeps_last"), [("dann", True), ("coral", True), ("mmd", True),
                                                      ("pseudo_label", True), ("finetune", False), ("lora", False)])
def test_domain_adaptation_keeps_the_last_epoch_unless_told_otherwise(strategy: str, keeps_last: bool) -> None:
    from transferkit.core.config import TrainingConfig
    from transferkit.strategies import STRATEGIES

    cls = STRATEGIES.get(strategy)
    assert cls(cls.Config()).resolve_training(TrainingConfig()).eval_every_epoch is (not keeps_last)
    assert cls(cls.Config()).resolve_training(TrainingConfig(eval_every_epoch=True)).eval_every_epoch is True



def test_target_monitor_logs_the_predicted_classes_and_warns_when_a_class_starves(caplog) -> None:
    from types import SimpleNamespace

    import torch

    from transferkit.strategies.domain_alignment import TargetMonitor

    model = SimpleNamespace(task=SimpleNamespace(labels=["negative", "positive"]))
    monitor = TargetMonitor()
    state = TrainState(total_steps=4)
    balanced = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 1.0], [1.0, 0.0]])

    def step(labels: torch.Tensor, target_logits: torch.Tensor) -> None:  # what the loss reports after each step
        monitor.on_batch_end(state, model, Losses(None, {}, {"source_labels": labels, "target_logits": target_logits}))

    with caplog.at_level(logging.INFO, logger="transferkit"):
        step(torch.tensor([0, 1, 0, 1]), balanced)
        step(torch.tensor([0, 1]), balanced[:2])
        monitor.on_epoch_start(state, model)
        assert state.history[-1]["target_predictions"] == {"negative": 0.5, "positive": 0.5}
        assert "collapsing" not in caplog.text
        step(torch.tensor([0, 1, 0, 1]), torch.tensor([[2.0, 0.0]] * 9 + [[0.0, 2.0]]))
        restored = TargetMonitor()
        restored.load_state_dict(monitor.state_dict())
        restored.on_fit_end(state, model)
    assert state.history[-1]["target_predictions"] == pytest.approx({"negative": 0.9, "positive": 0.1})
    assert "predicts positive on under half as many target examples" in caplog.text
    restored.on_fit_end(state, model)  # nothing new seen since its report: no further entry
    assert len(state.history) == 2
