"""``distill``: the losses, the student, the teacher's outputs, end to end, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transferkit.core.config import RunConfig
from transferkit.core.errors import UserError
from transferkit.data.collate import PaddingCollator
from transferkit.experiments.api import load
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.experiments.run import train
from transferkit.models.layers import spaced_layers, truncate_layers
from transferkit.models.loading import load_backbone
from transferkit.modules.distillation import DistillationLoss, HiddenStateLoss
from transferkit.testing import TOY_WORDS, make_tiny_bert, write_toy_conll

TRAINING = {"epochs": 8, "batch_size": 16, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0}


def _config(model: str, strategy: str | dict, files: dict[str, str], output: str, **extra) -> RunConfig:
    return RunConfig.from_dict({"model": model, "strategy": strategy, "output": output,
                                "data": {"train": files["train"], "eval": files["eval"], "text_column": "sentence",
                                         "max_length": 64},
                                "training": TRAINING, **extra})


def _meta(run: str) -> dict:
    return json.loads(Path(run, "model", "transferkit.json").read_text())


@pytest.fixture(scope="module")
def deep_model(tmp_path_factory) -> str:
    """A tiny BERT with 4 layers, so half of it is 2 layers."""
    return make_tiny_bert(tmp_path_factory.mktemp("deep"), vocab_words=TOY_WORDS, layers=4)


@pytest.fixture(scope="module")
def teacher(deep_model: str, toy_files, tmp_path_factory) -> str:
    output = str(tmp_path_factory.mktemp("teacher") / "run")
    result = train(_config(deep_model, "finetune", toy_files, output))
    assert result.metrics["eval"]["accuracy"] >= 0.9, result.metrics["eval"]
    return output


# ---- losses and layers ---------------------------------------------------------------------
def test_distillation_loss_is_t_squared_kl() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 3), torch.randn(5, 3)
    expected = F.kl_div(F.log_softmax(student / 4, -1), F.log_softmax(teacher / 4, -1), log_target=True,
                        reduction="batchmean") * 16
    assert float(DistillationLoss(4.0)(student, teacher)) == pytest.approx(float(expected), rel=1e-5)
    assert float(DistillationLoss(4.0)(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_loss_masks_tokens() -> None:
    student, teacher = torch.zeros(1, 3, 2), torch.tensor([[[1.0, 0.0], [5.0, -5.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 0, 1]])
    only_first = DistillationLoss(1.0)(student[:, :1], teacher[:, :1])
    assert float(DistillationLoss(1.0)(student, teacher, mask)) == pytest.approx(float(only_first) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="differ"):
        DistillationLoss(1.0)(torch.zeros(2, 3), torch.zeros(2, 4))


def test_hidden_state_loss_projects_to_the_teacher_width() -> None:
    loss = HiddenStateLoss(4, 6)
    value = loss(torch.randn(3, 4), torch.randn(3, 6))
    value.backward()
    assert loss.projection.weight.grad is not None


def test_spaced_layers_and_truncation(tiny_model: str) -> None:
    assert spaced_layers(6, 3) == [0, 2, 4] and spaced_layers(12, 4) == [0, 3, 6, 9] and spaced_layers(2, 2) == [0, 1]
    backbone = load_backbone(tiny_model).backbone
    truncate_layers(backbone, [1])
    assert len(backbone.encoder.layer) == 1 and backbone.config.num_hidden_layers == 1
    out = backbone(input_ids=torch.tensor([[2, 10, 3]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    assert out.last_hidden_state.shape == (1, 3, 32)


def test_collator_pads_per_token_teacher_logits() -> None:
    rows = [{"input_ids": [1, 2, 3], "teacher_logits": np.ones((3, 2), np.float32)},
            {"input_ids": [1], "teacher_logits": np.ones((1, 2), np.float32)}]
    batch = PaddingCollator(0)(rows)
    assert batch["teacher_logits"].shape == (2, 3, 2) and float(batch["teacher_logits"][1, 1:].abs().sum()) == 0


# ---- end to end ------------------------------------------------------------------------------
def test_pure_distillation_learns_the_task_from_the_teacher_alone(deep_model, teacher, toy_files, tmp_path) -> None:
    """α = 0: the gold labels carry no weight, so what the half-depth student knows came from the teacher."""
    output = str(tmp_path / "student")
    cache = EmbeddingCache(str(tmp_path / "cache"))
    strategy = {"name": "distill", "alpha": 0.0, "temperature": 2.0, "init": "model"}
    result = train(_config(deep_model, strategy, toy_files, output, teacher=teacher), cache=cache)
    assert result.metrics["eval"]["accuracy"] >= 0.85, result.metrics["eval"]
    assert cache.embedded == 240  # the teacher saw each training text once
    meta = _meta(output)
    assert meta["teacher"]["run"] == teacher and meta["teacher"]["student_init"] == "pretrained model"
    assert result.metrics["encoder"]["student_layers"] == [0, 2]
    assert load(output).predictor.model.backbone.config.num_hidden_layers == 2  # reloads at the student's depth
    again = train(_config(deep_model, strategy, toy_files, str(tmp_path / "again"), teacher=teacher), cache=cache)
    assert cache.embedded == 240 and cache.reused >= 240  # the teacher's logits came from the cache
    assert again.metrics["eval"]["accuracy"] == pytest.approx(result.metrics["eval"]["accuracy"])


def test_student_starts_from_the_teachers_layers_and_uses_unlabelled_text(deep_model, teacher, toy_files,
                                                                           tmp_path) -> None:
    output = str(tmp_path / "student")
    strategy = {"name": "distill", "hidden_weight": 0.5}
    extra = {"teacher": teacher}
    config = _config(deep_model, strategy, toy_files, output, **extra)
    config.data.sources = {"unlabeled": toy_files["eval"]}
    config.training.epochs = 1
    result = train(config)
    meta = _meta(output)
    assert meta["teacher"]["student_init"].startswith("teacher layers [0, 2]")
    logged = [entry["parts"] for entry in result.history if "parts" in entry]
    assert logged and {"ce", "kd", "kd_unlabeled"} <= set(logged[-1]), result.history
    assert result.metrics["eval"]["accuracy"] >= 0.85  # started from the fine-tuned teacher's layers


def test_token_classification_student(deep_model, tmp_path) -> None:
    files = {"train": write_toy_conll(str(tmp_path / "train.conll"), 160, seed=0),
             "eval": write_toy_conll(str(tmp_path / "eval.conll"), 60, seed=1)}
    teacher_dir = str(tmp_path / "teacher")
    train(_config(deep_model, "finetune", files, teacher_dir, task="token_classification"))
    result = train(_config(deep_model, "distill", files, str(tmp_path / "student"), task="token_classification",
                           teacher=teacher_dir))
    assert result.metrics["eval"]["f1"] >= 0.5, result.metrics["eval"]


# ---- bad input ---------------------------------------------------------------------------------
def test_distill_without_a_teacher_fails_before_any_work(deep_model, toy_files, tmp_path) -> None:
    with pytest.raises(UserError, match="learns from a teacher: set teacher"):
        train(_config(deep_model, "distill", toy_files, str(tmp_path / "out")))
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "out.partial")


def test_a_teacher_for_a_strategy_without_one_is_refused(deep_model, teacher, toy_files, tmp_path) -> None:
    with pytest.raises(UserError, match="learns from no teacher"):
        train(_config(deep_model, "finetune", toy_files, str(tmp_path / "out"), teacher=teacher))


def test_teacher_of_another_task_or_labels(deep_model, teacher, toy_files, tmp_path) -> None:
    with pytest.raises(UserError, match="task is 'classification'"):
        train(_config(deep_model, "distill", toy_files, str(tmp_path / "a"), task="token_classification",
                      teacher=teacher))
    relabelled = tmp_path / "three.csv"
    rows = Path(toy_files["train"]).read_text().splitlines()
    relabelled.write_text("\n".join([rows[0], *rows[1:], "a fine movie,neutral"]) + "\n")
    files = {"train": str(relabelled), "eval": toy_files["eval"]}
    with pytest.raises(UserError, match="labels .* differ"):
        train(_config(deep_model, "distill", files, str(tmp_path / "b"), teacher=teacher))


def test_token_teacher_with_another_tokenizer_is_refused(deep_model, tiny_model, tmp_path) -> None:
    files = {"train": write_toy_conll(str(tmp_path / "train.conll"), 40, seed=0),
             "eval": write_toy_conll(str(tmp_path / "eval.conll"), 20, seed=1)}
    teacher_dir = str(tmp_path / "teacher")
    other = make_tiny_bert(tmp_path / "other", vocab_words=["people", "places"])
    train(_config(other, "finetune", files, teacher_dir, task="token_classification"))
    with pytest.raises(UserError, match="tokenizer differs"):
        train(_config(deep_model, "distill", files, str(tmp_path / "s"), task="token_classification",
                      teacher=teacher_dir))


@pytest.mark.parametrize(("options", "message"), [
    ({"alpha": 1.5}, "alpha=1.5 must lie in"), ({"temperature": 0}, "temperature=0"),
    ({"student_layers": "third"}, "use half, all or a number"), ({"student_layers": "9"}, "has only 4 layers"),
])
def test_bad_options(deep_model, teacher, toy_files, tmp_path, options, message) -> None:
    with pytest.raises(UserError, match=message):
        train(_config(deep_model, {"name": "distill", **options}, toy_files, str(tmp_path / "out"), teacher=teacher))
