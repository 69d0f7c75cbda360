"""freeze_layers, layer-wise LR decay and gradual unfreezing do what they say."""

from __future__ import annotations

import pytest
import torch

from transferkit.core.config import TrainingConfig
from transferkit.core.contracts import TrainState
from transferkit.data import PaddingCollator, read_table, to_examples
from transferkit.models import load_backbone
from transferkit.modules import TaskModel
from transferkit.strategies.finetune import Finetune, FinetuneConfig, GradualUnfreeze
from transferkit.tasks import ClassificationTask
from transferkit.training import Trainer


def build(tiny_model: str, strategy: Finetune):
    loaded = load_backbone(tiny_model)
    task = ClassificationTask(labels=["neg", "pos"])
    model = strategy.prepare(TaskModel.build(loaded.backbone, task))
    return model, loaded.tokenizer, task


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(model, before) -> set[str]:
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}


def fit(model, tokenizer, task, strategy, toy_files, epochs=1):
    examples, _ = to_examples(read_table(toy_files["train"]), "sentence", "label")
    features = task.featurize(examples, tokenizer, 64)
    config = TrainingConfig(epochs=epochs, batch_size=16, learning_rate=1e-3, progress=False, checkpoint_every=0)
    batches = strategy.batch_source({"train": features}, PaddingCollator(tokenizer.pad_token_id), config)
    Trainer(strategy, config).fit(model, batches)


def test_freeze_layers_freezes_embeddings_and_bottom_layers(tiny_model, toy_files) -> None:
    strategy = Finetune(FinetuneConfig(freeze_layers=1))
    model, tokenizer, task = build(tiny_model, strategy)
    groups = strategy.param_groups(model, 1e-3, 1e-3, 0.0)
    in_optimizer = {id(p) for g in groups for p in g["params"]}
    frozen = [n for n, p in model.named_parameters() if "embeddings" in n or "encoder.layer.0." in n]
    assert frozen and all(not p.requires_grad and id(p) not in in_optimizer
                          for n, p in model.named_parameters() if n in frozen)
    before = snapshot(model)
    fit(model, tokenizer, task, strategy, toy_files)
    moved = changed(model, before)
    assert not moved & set(frozen)
    assert any("encoder.layer.1." in n for n in moved) and any(n.startswith("head.") for n in moved)


def test_freeze_layers_out_of_range_is_a_user_error(tiny_model) -> None:
    from transferkit.core.errors import UserError

    with pytest.raises(UserError, match="freeze_layers=5.*2 layers"):
        build(tiny_model, Finetune(FinetuneConfig(freeze_layers=5)))


def test_layerwise_lr_decay_scales_by_depth(tiny_model) -> None:
    strategy = Finetune(FinetuneConfig(layerwise_lr_decay=0.5))
    model, _, _ = build(tiny_model, strategy)
    rates = {g["name"].removesuffix(".no_decay"): g["lr"] for g in strategy.param_groups(model, 1.0, 2.0, 0.01)}
    assert rates["head"] == 2.0
    assert rates["pooler"] == 1.0 and rates["layer.1"] == 0.5 and rates["layer.0"] == 0.25
    assert rates["embeddings"] == 0.125


def test_no_weight_decay_on_biases_and_layernorm(tiny_model) -> None:
    strategy = Finetune()
    model, _, _ = build(tiny_model, strategy)
    names = {id(p): n for n, p in model.named_parameters()}
    for group in strategy.param_groups(model, 1e-3, 1e-3, 0.01):
        for param in group["params"]:
            no_decay = names[id(param)].endswith(("bias", "LayerNorm.weight"))
            assert group["weight_decay"] == (0.0 if no_decay else 0.01)


def test_gradual_unfreeze_trains_head_first_then_one_group_per_epoch(tiny_model, toy_files) -> None:
    strategy = Finetune(FinetuneConfig(gradual_unfreeze=True))
    model, tokenizer, task = build(tiny_model, strategy)
    before = snapshot(model)
    fit(model, tokenizer, task, strategy, toy_files, epochs=1)
    moved = changed(model, before)
    assert moved and all(n.startswith("head.") for n in moved)
    callback = GradualUnfreeze(strategy)
    callback.on_epoch_start(TrainState(epoch=2), model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("head.") for n in trainable) and any("pooler" in n for n in trainable)
    assert any("encoder.layer.1." in n for n in trainable)
    assert not any("encoder.layer.0." in n or "embeddings" in n for n in trainable)


@pytest.mark.parametrize(("setting", "rows", "frozen"), [
    ("auto", None, False), ("true", None, True), ("auto", 100_000, True), ("false", 100_000, False)])
def test_word_embeddings_freeze_for_large_vocabularies_by_default(tiny_model, toy_files, setting, rows, frozen) -> None:
    strategy = Finetune(FinetuneConfig(freeze_word_embeddings=setting))
    loaded = load_backbone(tiny_model)
    if rows is not None:  # a multilingual-sized vocabulary (the toy data uses the first rows only)
        loaded.backbone.resize_token_embeddings(rows)
    task = ClassificationTask(labels=["neg", "pos"])
    model = strategy.prepare(TaskModel.build(loaded.backbone, task))
    words = model.backbone.get_input_embeddings().weight
    in_optimizer = {id(p) for g in strategy.param_groups(model, 1e-3, 1e-3, 0.0) for p in g["params"]}
    assert words.requires_grad != frozen and (id(words) in in_optimizer) != frozen
    before = snapshot(model)
    fit(model, loaded.tokenizer, task, strategy, toy_files)
    moved = changed(model, before)
    assert ("backbone.embeddings.word_embeddings.weight" in moved) != frozen
    assert "backbone.embeddings.position_embeddings.weight" in moved  # the rest of the embeddings train


def test_scratch_never_freezes_its_random_word_embeddings_by_default(tiny_model) -> None:
    from transferkit.strategies.scratch import Scratch

    loaded = load_backbone(tiny_model, random_init=True)
    loaded.backbone.resize_token_embeddings(100_000)
    task = ClassificationTask(labels=["neg", "pos"])
    words = lambda strategy: strategy.prepare(TaskModel.build(loaded.backbone, task)).backbone.get_input_embeddings().weight  # noqa: E731
    assert words(Scratch(FinetuneConfig())).requires_grad
    assert not words(Scratch(FinetuneConfig(freeze_word_embeddings="true"))).requires_grad
