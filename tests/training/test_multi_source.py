"""Several data sources through the unchanged Trainer: a two-source strategy and a two-task model,
both defined outside the package; the two-source run resumes after SIGKILL to the same predictions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from tests.helpers import one_line_error
from tests.toys.consistency import register
from tests.training.test_resume import predictions, state_of
from transferkit.core.config import RunConfig, TrainingConfig
from transferkit.core.contracts import Batch, Losses
from transferkit.data import read_table, to_examples
from transferkit.data.collate import PaddingCollator
from transferkit.data.sources import MixedSources, SingleSource
from transferkit.data.task_splits import load_tagged_splits
from transferkit.experiments.run import train
from transferkit.models.loading import load_backbone
from transferkit.modules.inference import run_ragged
from transferkit.strategies.neural import NeuralStrategy
from transferkit.tasks import ClassificationTask, TokenClassificationConfig, TokenClassificationTask
from transferkit.testing import write_toy_conll, write_toy_csv
from transferkit.training import Trainer, seed_everything

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def unlabelled_csv(path: str, rows: int, seed: int) -> str:
    """Toy sentences without their labels: target-domain text."""
    labelled = write_toy_csv(path + ".labelled.csv", rows, seed=seed)
    with open(labelled) as source, open(path, "w") as target:
        for line in source:
            target.write(line.split(",")[0] + "\n")
    return path


def consistency_config(model: str, files: dict[str, str], output: str, **training: Any) -> RunConfig:
    return RunConfig.from_dict({
        "model": model, "strategy": "toy_consistency", "output": output,
        "data": {"train": files["train"], "eval": files["eval"], "text_column": "sentence", "max_length": 64,
                 "sources": {"target_unlabeled": {"path": files["target"], "text_column": "sentence"}}},
        "training": {"epochs": 3, "batch_size": 16, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0,
                     **training}})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("two_source")
    return {"train": write_toy_csv(str(root / "train.csv"), 160, seed=0),
            "eval": write_toy_csv(str(root / "eval.csv"), 80, seed=1),
            "target": unlabelled_csv(str(root / "target.csv"), 400, seed=2)}


def test_two_source_strategy_trains_on_zipped_source_and_target_batches(tiny_model, files, tmp_path) -> None:
    register()
    result = train(consistency_config(tiny_model, files, str(tmp_path / "run")))
    parts = [entry["parts"] for entry in result.history if "parts" in entry]
    assert parts and all({"task", "target_entropy"} <= set(p) for p in parts)
    # the zipped epoch is as long as the longer (target) source: 400 / 16 = 25 steps per epoch
    assert result.metrics["steps"] == 3 * 25
    assert parts[-1]["target_entropy"] < parts[0]["target_entropy"]  # the target term is optimised
    assert result.metrics["eval"]["accuracy"] >= 0.8


def test_a_missing_required_source_fails_before_any_work(tiny_model, files, tmp_path) -> None:
    register()
    config = consistency_config(tiny_model, files, str(tmp_path / "run"))
    config.data.sources = {}
    one_line_error(lambda: train(config), "toy_consistency", "data.sources.target_unlabeled")
    assert not os.path.exists(str(tmp_path / "run.partial"))


def toy_cli(model: str, files: dict[str, str], output: str) -> list[str]:
    return [sys.executable, "-m", "tests.toys.consistency", "train", "--model", model, "--strategy", "toy_consistency",
            "--train", files["train"], "--eval", files["eval"], "--text-column", "sentence", "--output", output,
            "--set", f"data.sources.target_unlabeled={files['target']}", "--set", "training.epochs=2",
            "--set", "training.batch_size=8", "--set", "training.checkpoint_every=3",
            "--set", "training.learning_rate=1e-3", "--set", "training.progress=false"]


def test_two_source_run_resumes_after_sigkill_to_the_same_predictions(tiny_model, files, tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ROOT}
    reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
    subprocess.run(toy_cli(tiny_model, files, reference), check=True, capture_output=True, env=env, cwd=ROOT)
    process = subprocess.Popen(toy_cli(tiny_model, files, killed), env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        state = state_of(killed)
        if state and state["epoch"] == 0 and state["batch_in_epoch"] >= 12:
            break  # mid-epoch 1 of 2 (50 zipped steps per epoch), a few checkpoints in
        time.sleep(0.02)
    assert process.poll() is None, "training finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    at_kill = state_of(killed)
    assert at_kill is not None and 0 < at_kill["batch_in_epoch"] < 50
    assert at_kill["sources"]["sources"] == ["source", "target"]
    resumed = subprocess.run([*toy_cli(tiny_model, files, killed), "--resume"], capture_output=True, text=True,
                             env=env, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch 0" in resumed.stderr
    expected = predictions(reference, files["eval"], str(tmp_path / "a.jsonl"))
    actual = predictions(killed, files["eval"], str(tmp_path / "b.jsonl"))
    assert [r["label"] for r in actual] == [r["label"] for r in expected]
    for a, b in zip(actual, expected, strict=True):
        for label, probability in a["probabilities"].items():
            assert probability == pytest.approx(b["probabilities"][label], abs=1e-6)


class ToyMultiTask(NeuralStrategy):
    """Classification + NER heads on one encoder; each step trains the task its batch comes from,
    ``L = Σ_t λ_t L_t`` over the tasks of the step (one task per step under :class:`MixedSources`)."""

    name: ClassVar[str] = "toy_multitask"
    supports: ClassVar[frozenset[str]] = frozenset({"classification"})
    Config: ClassVar[type] = TrainingConfig  # any dataclass; the toy has no options

    def __init__(self, other: Any, temperature: float) -> None:
        super().__init__(TrainingConfig())
        self.other, self.temperature = other, temperature

    def prepare(self, model: Any) -> Any:
        model.add_head(self.other)
        return model

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": learning_rate}]

    def batch_source(self, features: dict[str, list[dict[str, Any]]], collator: Any, config: Any) -> MixedSources:
        sources = {name: SingleSource(rows, collator, config.batch_size, config.seed) for name, rows in features.items()}
        return MixedSources(sources, "temperature", self.temperature, seed=config.seed)

    def loss(self, model: Any, batch: Batch) -> Losses:
        parts = {name: model.task_for(name).loss(model(sub, task=name), sub) for name, sub in batch.items()}
        total = sum(parts.values())
        return Losses(total, {name: float(value.detach()) for name, value in parts.items()})


def test_two_task_model_trains_both_heads_through_the_trainer_with_temperature_sampling(tiny_model, tmp_path) -> None:
    seed_everything(0)
    sentiment = write_toy_csv(str(tmp_path / "train.csv"), 320, seed=0)
    tagged = load_tagged_splits(RunConfig.from_dict({"data": {"train": write_toy_conll(str(tmp_path / "t.conll"), 80,
                                                                                        seed=0)}}).data,
                                0, TokenClassificationConfig())
    texts, labels = to_examples(read_table(sentiment), "sentence", "label")
    classification = ClassificationTask(labels=labels.names)
    ner = TokenClassificationTask(labels=tagged.labels)
    strategy = ToyMultiTask(ner, temperature=2.0)
    loaded = load_backbone(tiny_model)
    model = strategy.prepare(classification.build_model(loaded))
    features = {"classification": classification.featurize(texts, loaded.tokenizer, 64),
                "token_classification": ner.featurize(tagged.train, loaded.tokenizer, 64)}
    config = TrainingConfig(epochs=4, batch_size=16, learning_rate=3e-3, progress=False, checkpoint_every=0)
    batches = strategy.batch_source(features, PaddingCollator(loaded.tokenizer.pad_token_id), config)
    sizes = np.array([20, 5])  # batches per task: 320 / 16 and 72 / 16 rounded up
    assert [s.num_batches for s in batches.sources.values()] == list(sizes)
    np.testing.assert_allclose(batches.probabilities(), np.sqrt(sizes) / np.sqrt(sizes).sum())
    counts = np.bincount(np.concatenate([batches.schedule(epoch) for epoch in range(40)]), minlength=2)
    np.testing.assert_allclose(counts / counts.sum(), batches.probabilities(), atol=0.03)  # T=2 flattens 0.8/0.2
    before_classification = model.head.output_layer().weight.detach().clone()
    before_ner = model.heads["token_classification"].classifier.weight.detach().clone()
    result = Trainer(strategy, config).fit(model, batches)
    assert result.steps == 4 * 25
    assert not torch.equal(before_classification, model.head.output_layer().weight)
    assert not torch.equal(before_ner, model.heads["token_classification"].classifier.weight)
    collator = PaddingCollator(loaded.tokenizer.pad_token_id)
    probabilities = classification.decode(classification.infer(model, features["classification"], collator, 64))
    assert (probabilities.argmax(1) == np.asarray(texts.labels)).mean() >= 0.8
    logits = run_ragged(lambda b: model(b, task="token_classification")["logits"], features["token_classification"],
                        collator, 64)
    tags = ner.decode(logits, features["token_classification"])
    assert ner.metrics(tags, ner.references(tagged.train))["f1"] >= 0.2
