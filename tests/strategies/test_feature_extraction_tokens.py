"""feature_extraction on per-token tasks: frozen encoder, token states computed once, linear token/span head."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from tests.helpers import one_line_error, run_cli
from transferkit.core.config import RunConfig
from transferkit.data.qa import read_squad
from transferkit.data.tagging import read_tagged
from transferkit.experiments.api import evaluate_run
from transferkit.experiments.run import train
from transferkit.modules import TaskModel
from transferkit.modules.inference import run_ragged
from transferkit.serving import load_predictor
from transferkit.testing import write_toy_conll, write_toy_squad
from transferkit.training import Trainer

TASKS = ["token_classification", "question_answering"]


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory) -> dict[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("toy_tokens")
    return {"token_classification": {"train": write_toy_conll(str(root / "train.conll"), 240, seed=0),
                                     "eval": write_toy_conll(str(root / "eval.conll"), 80, seed=1)},
            "question_answering": {"train": write_toy_squad(str(root / "train.json"), 240, seed=0),
                                   "eval": write_toy_squad(str(root / "eval.json"), 80, seed=1)}}


def run_config(model: str, task: str, files: dict[str, str], output: str, **strategy) -> RunConfig:
    return RunConfig.from_dict({
        "model": model, "task": task, "output": output,
        "strategy": {"name": "feature_extraction", **strategy},
        "data": {"train": files["train"], "eval": files["eval"], "max_length": 64},
        "training": {"epochs": 8, "batch_size": 16, "learning_rate": 5e-3, "progress": False, "checkpoint_every": 0},
    })


@pytest.fixture(scope="module", params=TASKS)
def trained(request, tiny_model, toy_data, tmp_path_factory) -> dict:
    """One run per task, watching the model: its initial weights, and encoder calls inside ``Trainer.fit``."""
    task, watch = request.param, {"encoder_rows": 0, "rows_in_fit": None}
    build, fit = TaskModel.build.__func__, Trainer.fit

    def watched_build(cls, *args, **kwargs):
        model = build(cls, *args, **kwargs)
        watch["initial"] = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        model.backbone.register_forward_hook(lambda module, args, kwargs, output: watch.__setitem__(
            "encoder_rows", watch["encoder_rows"] + len(kwargs["input_ids"])), with_kwargs=True)
        return model

    def watched_fit(self, *args, **kwargs):
        before = watch["encoder_rows"]
        result = fit(self, *args, **kwargs)
        watch["rows_in_fit"] = watch["encoder_rows"] - before
        return result

    output = str(tmp_path_factory.mktemp(task) / "run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TaskModel, "build", classmethod(watched_build))
        patch.setattr(Trainer, "fit", watched_fit)
        result = train(run_config(tiny_model, task, toy_data[task], output))
    return {"task": task, "output": output, "result": result, "files": toy_data[task], **watch}


def test_encoder_runs_once_per_window_never_inside_the_training_loop(trained) -> None:
    assert trained["rows_in_fit"] == 0  # every epoch trains on the cached token states
    assert trained["result"].metrics["steps"] == 8 * 15  # 240 windows / 16 per batch x 8 epochs: the Trainer ran
    assert trained["encoder_rows"] == 240 + 80 + 80  # train + eval states once, then the final full-model eval
    assert trained["result"].config["strategy"]["head"] == "auto"


def test_encoder_is_bit_identical_and_only_the_head_learned(trained) -> None:
    saved = load_predictor(trained["output"]).model.state_dict()
    initial = trained["initial"]
    assert set(saved) == set(initial)
    encoder = [name for name in saved if name.startswith("backbone.")]
    assert encoder and all(torch.equal(saved[name], initial[name]) for name in encoder)
    head = [name for name in saved if name.startswith("head.")]
    assert head and all(not torch.equal(saved[name], initial[name]) for name in head)
    metrics = trained["result"].metrics
    assert metrics["trainable_parameters"] == sum(saved[name].numel() for name in head)
    if trained["task"] == "question_answering":  # answering the first context word scores ~F1 5
        assert metrics["eval"]["f1"] >= 40, metrics["eval"]
    else:  # all-O scores entity F1 0
        assert metrics["eval"]["f1"] >= 0.3, metrics["eval"]


def test_cached_token_states_give_the_full_model_logits(trained) -> None:
    predictor = load_predictor(trained["output"])
    read = read_squad if trained["task"] == "question_answering" else read_tagged
    features = predictor.featurize(read(trained["files"]["eval"]))
    states = run_ragged(predictor.model.hidden_states, features, predictor.collator, 7)
    rows = [{**feature, "features": state} for feature, state in zip(features, states, strict=True)]
    cached, full = predictor.outputs(predictor.model, rows, 32), predictor.outputs(predictor.model, features, 5)
    assert len(cached) == len(full) == len(features)
    for window_cached, window_full, feature in zip(cached, full, features, strict=True):
        assert window_cached.shape == window_full.shape == (len(feature["input_ids"]), len(predictor.labels))
        np.testing.assert_allclose(window_cached, window_full, rtol=1e-5, atol=1e-5)


def test_saved_run_evaluates_and_predicts_as_an_ordinary_model(trained, capsys, monkeypatch, tmp_path) -> None:
    output, files = trained["output"], trained["files"]
    meta = load_predictor(output).meta
    assert meta["strategy"] == "feature_extraction" and "base_model" not in meta  # full weights, no delta
    assert evaluate_run(output, files["eval"])["f1"] == pytest.approx(trained["result"].metrics["eval"]["f1"])
    code, out, err = run_cli(["evaluate", output, "--data", files["eval"]], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["f1"] == pytest.approx(trained["result"].metrics["eval"]["f1"])
    predictions = str(tmp_path / "predictions.jsonl")
    code, _, err = run_cli(["predict", output, "--input", files["eval"], "--output", predictions], capsys, monkeypatch)
    assert code == 0, err
    with open(predictions, encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == 80


@pytest.mark.parametrize("head", ["logreg", "mlp"])
@pytest.mark.parametrize("task", TASKS)
def test_a_pooled_head_for_a_per_token_task_fails_before_any_work(head, task, tiny_model, toy_data, tmp_path) -> None:
    output = str(tmp_path / "run")
    config = run_config(tiny_model, task, toy_data[task], output, head=head)
    one_line_error(lambda: train(config), "feature_extraction", task, f"head={head}", "linear")
    assert not os.path.exists(output) and not os.path.exists(output + ".partial")


def test_auto_head_keeps_closed_form_logistic_regression_for_classification(tiny_model, toy_files, tmp_path) -> None:
    config = RunConfig.from_dict({
        "model": tiny_model, "output": str(tmp_path / "run"), "strategy": "feature_extraction",
        "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence"},
        "training": {"progress": False},
    })
    result = train(config)
    assert result.config["strategy"]["head"] == "auto"
    assert result.metrics["steps"] == 0 and result.history == []  # fitted in closed form, no Trainer
    assert result.metrics["eval"]["accuracy"] >= 0.8


@pytest.mark.shared_data
@pytest.mark.slow
def test_frozen_minilm_beats_scratch_on_conll_ner_slice(minilm_path, tmp_path) -> None:
    """300 CoNLL-2003 training sentences, 200 eng.testa sentences, one epoch with the same settings:
    a frozen pretrained MiniLM + linear tag head vs the same architecture trained from scratch."""
    from tests.conftest import SHARED_DATA

    conll = SHARED_DATA / "conll2003_en"
    scores = {}
    for strategy in ("feature_extraction", "scratch"):
        config = RunConfig.from_dict({
            "model": minilm_path, "strategy": strategy, "task": "token_classification",
            "output": str(tmp_path / strategy),
            "data": {"train": str(conll / "eng.train"), "eval": str(conll / "eng.testa"), "max_train_examples": 300,
                     "max_eval_examples": 200, "max_length": 96},
            "training": {"epochs": 1, "batch_size": 8, "learning_rate": 2e-4, "head_learning_rate": 3e-2,
                         "progress": False, "checkpoint_every": 0, "eval_every_epoch": False},
        })
        scores[strategy] = train(config).metrics["eval"]["f1"]
    assert scores["feature_extraction"] >= 0.25, scores  # seen: 0.341 vs 0.084
    assert scores["feature_extraction"] >= scores["scratch"] + 0.15, scores
