"""protonet: the prototype head is the distance classifier, episode shapes follow the data, bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import one_line_error
from transferkit.core.config import DataConfig, RunConfig, TrainingConfig
from transferkit.data import PaddingCollator, read_table, to_examples
from transferkit.data.episodes import EpisodeShape
from transferkit.experiments.run import train
from transferkit.models import load_backbone
from transferkit.modules import TaskModel
from transferkit.modules.prototypical import class_prototypes, prototype_logits
from transferkit.serving import load_predictor
from transferkit.strategies.protonet import Protonet, ProtonetConfig
from transferkit.tasks import ClassificationTask


def build(tiny_model: str, labels: list[str]) -> TaskModel:
    loaded = load_backbone(tiny_model)
    return Protonet().prepare(TaskModel.build(loaded.backbone, ClassificationTask(labels=labels)))


def test_the_fitted_head_gives_the_distance_classifiers_softmax_and_argmax(tiny_model: str) -> None:
    model = build(tiny_model, ["a", "b", "c"]).eval()
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), [4, 7, 5])
    features = (rng.normal(size=(labels.size, 32)) + 3 * np.eye(3, 32)[labels]).astype(np.float32)
    Protonet().fit_head(model, features, labels, seed=0)
    queries = torch.as_tensor(rng.normal(size=(40, 32)), dtype=torch.float32)
    prototypes = class_prototypes(torch.as_tensor(features), torch.as_tensor(labels), 3)
    distance = prototype_logits(queries, prototypes)  # (40, 3) = -‖z - c_k‖²
    with torch.no_grad():
        head = model.head.project(queries)  # the saved model's logits
    assert torch.allclose(head - queries.pow(2).sum(1, keepdim=True), distance, atol=1e-3)
    assert torch.allclose(head.softmax(1), distance.softmax(1), atol=1e-5)
    assert torch.equal(head.argmax(1), distance.argmax(1))


def test_only_the_encoder_trains(tiny_model: str) -> None:
    model = build(tiny_model, ["a", "b"])
    groups = Protonet().param_groups(model, 1e-3, 1e-3, 0.01)
    in_optimizer = {id(p) for group in groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in model.backbone.parameters()}
    assert not any(p.requires_grad for p in model.head.parameters())


@pytest.mark.parametrize(("sizes", "config", "expected"), [
    ([30] * 8, ProtonetConfig(), EpisodeShape(5, 5, 5)),
    ([30, 30], ProtonetConfig(), EpisodeShape(2, 5, 5)),  # binary: 2-way
    ([8] * 3, ProtonetConfig(), EpisodeShape(3, 5, 3)),  # k = 8 labels per class: K = 5, Q = 3
    ([40, 3, 40], ProtonetConfig(), EpisodeShape(3, 2, 1)),  # the smallest class bounds K + Q
    ([2, 2, 2], ProtonetConfig(ways=2, shots=1, queries=1), EpisodeShape(2, 1, 1)),
])
def test_episode_shape_follows_the_data(sizes: list[int], config: ProtonetConfig, expected: EpisodeShape) -> None:
    labels = np.repeat(np.arange(len(sizes)), sizes)
    assert Protonet(config).episode_shape({"train": labels}) == expected


def test_too_few_labels_for_episodes_are_refused_clearly() -> None:
    one_line_error(lambda: Protonet().episode_shape({"train": np.array([0, 0, 1, 2, 2])}),
                   "at least 2 labelled examples per class", "train has 1", "data.budget")
    one_line_error(lambda: Protonet().episode_shape({"train": np.zeros(10, dtype=int)}), "at least 2 classes")
    one_line_error(lambda: Protonet(ProtonetConfig(ways=1)).check_task(ClassificationTask), "ways (N)", ">= 2")
    one_line_error(lambda: Protonet(ProtonetConfig(episodes=-1)).check_task(ClassificationTask), "strategy.episodes")


def features(tiny_model: str, path: str) -> tuple[list[dict], object]:
    loaded = load_backbone(tiny_model)
    examples, _ = to_examples(read_table(path), "sentence", "label")
    return ClassificationTask(labels=["neg", "pos"]).featurize(examples, loaded.tokenizer, 64), loaded.tokenizer


def test_batch_source_covers_the_labelled_rows_once_per_epoch(tiny_model: str, toy_files) -> None:
    rows, tokenizer = features(tiny_model, toy_files["train"])
    source = Protonet().batch_source({"train": rows}, PaddingCollator(tokenizer.pad_token_id), TrainingConfig())
    assert source.shape == EpisodeShape(2, 5, 5)
    assert source.num_batches == -(-len(rows) // 20)
    batch = next(iter(source))
    assert batch["input_ids"].shape[0] == 20 and set(batch["labels"].tolist()) == {0, 1}
    both = Protonet().batch_source({"train": rows, "more": rows[:40]}, PaddingCollator(0), TrainingConfig())
    assert both.names == ["train", "more"] and both.num_batches == -(-(len(rows) + 40) // 20)
    unlabelled = [{k: v for k, v in row.items() if k != "labels"} for row in rows]
    one_line_error(lambda: Protonet().batch_source({"train": rows, "target": unlabelled}, list, TrainingConfig()),
                   "data.sources.target", "label_column")


def config(tiny_model: str, toy_files, output: str, **data) -> RunConfig:
    return RunConfig.from_dict({
        "model": tiny_model, "strategy": "protonet", "output": output,
        "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence", "max_length": 64,
                 **data},
        "training": {"epochs": 2, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0}})


def test_the_saved_model_predicts_the_nearest_prototype(tiny_model: str, toy_files, tmp_path) -> None:
    result = train(config(tiny_model, toy_files, str(tmp_path / "run")))
    assert not any("eval" in entry for entry in result.history)  # the head is unfitted during training: no eval
    assert result.metrics["selected_on"] is None and result.metrics["best_step"] is None
    predictor = load_predictor(str(tmp_path / "run"))
    task = predictor.task
    train_examples = task.read(toy_files["train"], _data(toy_files))
    eval_examples = task.read(toy_files["eval"], _data(toy_files))
    encoder = predictor.text_encoder("test")
    prototypes = class_prototypes(torch.as_tensor(encoder.encode(train_examples.texts)),
                                  torch.as_tensor(train_examples.labels), 2)
    distance = prototype_logits(torch.as_tensor(encoder.encode(eval_examples.texts)), prototypes)
    probabilities = predictor.predict(eval_examples)
    assert np.allclose(probabilities, distance.softmax(1).numpy(), atol=1e-4)
    nearest = distance.argmax(1).numpy()
    assert result.metrics["eval"]["accuracy"] == pytest.approx(float((nearest == np.array(eval_examples.labels)).mean()))
    assert result.metrics["eval"]["accuracy"] > 0.6  # 2 epochs of episodes on a tiny random encoder already learn


def _data(toy_files) -> DataConfig:
    return DataConfig(train=toy_files["train"], text_column="sentence", max_length=64)


def test_one_label_per_class_is_refused_before_training(tiny_model: str, toy_files, tmp_path) -> None:
    one_line_error(lambda: train(config(tiny_model, toy_files, str(tmp_path / "run"), budget=1)),
                   "protonet", "at least 2 labelled examples per class", "data.budget")


def test_a_labelled_data_source_adds_episodes(tiny_model: str, toy_files, tmp_path) -> None:
    more = {"more": {"path": toy_files["eval"], "label_column": "label"}}
    result = train(config(tiny_model, toy_files, str(tmp_path / "run"), sources=more))
    assert result.metrics["steps"] == 2 * -(-(240 + 80) // 20)  # 2 epochs over both datasets' rows
