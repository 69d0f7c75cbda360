"""Summarization: BERT2BERT warm start, seq2seq checkpoints, target truncation, decoding, runs end to end."""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch

from transferkit.core.config import DataConfig, RunConfig
from transferkit.core.errors import UserError
from transferkit.data.seq2seq import Seq2SeqExamples
from transferkit.data.task_splits import parallel_target, read_seq2seq_file
from transferkit.experiments.api import evaluate_run, predict_file
from transferkit.experiments.run import train
from transferkit.models import load_backbone
from transferkit.modules.seq2seq import shift_right
from transferkit.serving import load_predictor
from transferkit.tasks import SummarizationConfig, SummarizationTask
from transferkit.testing import make_tiny_t5, write_toy_pairs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("pairs")
    return {"train": write_toy_pairs(str(root / "train.jsonl"), 240, seed=0),
            "eval": write_toy_pairs(str(root / "eval.jsonl"), 40, seed=1)}


def _model(ref: str, random_init: bool = False):
    task = SummarizationTask(SummarizationConfig(max_target_length=24, num_beams=2))
    return task, task.build_model(load_backbone(ref, random_init=random_init, seq2seq=True))


def test_warm_start_copies_the_encoder_into_the_decoder_and_adds_cross_attention(tiny_model) -> None:
    task, model = _model(tiny_model)
    encoder, decoder = model.backbone.encoder, model.backbone.decoder
    layer = decoder.bert.encoder.layer[0]
    assert torch.equal(layer.attention.self.query.weight, encoder.encoder.layer[0].attention.self.query.weight)
    assert torch.equal(decoder.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)
    assert decoder.cls.predictions.decoder.weight is decoder.bert.embeddings.word_embeddings.weight  # tied LM head
    new = {id(p) for p in model.new_parameters()}
    assert id(layer.crossattention.self.query.weight) in new
    assert id(layer.attention.self.query.weight) not in new
    assert decoder.config.is_decoder and decoder.config.add_cross_attention
    tokenizer = load_backbone(tiny_model).tokenizer
    assert model.backbone.config.decoder_start_token_id == tokenizer.cls_token_id
    assert model.backbone.config.eos_token_id == tokenizer.sep_token_id


def test_random_init_builds_the_same_architecture_with_other_weights(tiny_model) -> None:
    _, warm = _model(tiny_model)
    torch.manual_seed(1)
    _, cold = _model(tiny_model, random_init=True)
    warm_shapes = {n: p.shape for n, p in warm.named_parameters()}
    assert warm_shapes == {n: p.shape for n, p in cold.named_parameters()}
    name = "backbone.decoder.bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(dict(warm.named_parameters())[name], dict(cold.named_parameters())[name])
    assert len(cold.new_parameters()) == len(list(cold.backbone.decoder.parameters()))


def test_labels_drop_the_start_token_and_overlong_targets_are_truncated_and_counted(tiny_model, caplog) -> None:
    tokenizer = load_backbone(tiny_model).tokenizer
    task = SummarizationTask(SummarizationConfig(max_target_length=6))
    examples = Seq2SeqExamples(["a film", "the plot"], ["good", "the movie was good and the plot was fine"],
                               source="toy.jsonl")
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        features = task.featurize(examples, tokenizer, 32)
    assert "toy.jsonl: 1 of 2 target summaries are longer than max_target_length=6" in caplog.text
    short, long = features[0]["labels"], features[1]["labels"]
    assert short[0] != tokenizer.cls_token_id and short[-1] == tokenizer.sep_token_id
    assert len(long) == 6 and long[-1] == tokenizer.sep_token_id


def test_shift_right_feeds_the_start_token_and_pads_ignored_positions() -> None:
    labels = torch.tensor([[5, 6, 3, -100], [7, 3, -100, -100]])
    assert shift_right(labels, start=2, pad=0).tolist() == [[2, 5, 6, 3], [2, 7, 3, 0]]


def test_teacher_forced_loss_ignores_padding(tiny_model) -> None:
    task, model = _model(tiny_model)
    tokenizer = load_backbone(tiny_model).tokenizer
    features = task.featurize(Seq2SeqExamples(["the film was good"] * 2, ["good", "good film"]), tokenizer, 32)
    from transferkit.data.collate import PaddingCollator

    batch = PaddingCollator(tokenizer.pad_token_id)(features)
    assert (batch["labels"] == -100).any()
    loss = task.loss(model(batch), batch)
    assert torch.isfinite(loss) and loss.requires_grad


def test_parallel_files_are_found_by_name(tmp_path) -> None:
    assert parallel_target("data/src.000-10.txt") == os.path.join("data", "tgt.000-10.txt")
    assert parallel_target("data/train.source") == os.path.join("data", "train.target")
    assert parallel_target("data/train.jsonl") is None
    (tmp_path / "src.txt").write_text("the film was good\nthe plot was dull\n", encoding="utf-8")
    config = SummarizationConfig()
    with pytest.raises(UserError, match="tgt.txt"):
        read_seq2seq_file(str(tmp_path / "src.txt"), DataConfig(), config)
    (tmp_path / "tgt.txt").write_text("good\ndull\n", encoding="utf-8")
    examples = read_seq2seq_file(str(tmp_path / "src.txt"), DataConfig(), config)
    assert examples.targets == ["good", "dull"]
    documents = read_seq2seq_file(str(tmp_path / "src.txt"), DataConfig(), config, require_targets=False)
    assert documents.targets is None and documents.rows == [1, 2]


def test_missing_summary_column_is_a_one_line_error(tmp_path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"document": "a film", "abstract": "film"}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="no column 'summary'"):
        read_seq2seq_file(str(path), DataConfig(), SummarizationConfig())


def _config(model: str, strategy: str, pairs: dict[str, str], output: str, epochs: int = 12) -> RunConfig:
    return RunConfig.from_dict({
        "model": model, "strategy": strategy, "output": output,
        "task": {"name": "summarization", "max_target_length": 24, "num_beams": 2},
        "data": {"train": pairs["train"], "eval": pairs["eval"], "max_length": 64},
        "training": {"epochs": epochs, "batch_size": 16, "learning_rate": 3e-3, "progress": False,
                     "checkpoint_every": 0, "eval_every_epoch": False},
    })


def test_bert2bert_learns_saves_reloads_and_predicts(tiny_model, pairs, tmp_path) -> None:
    output = str(tmp_path / "run")
    result = train(_config(tiny_model, "finetune", pairs, output))
    metrics = result.metrics["eval"]
    # the summary copies the person and place: lead-1 (the whole document) scores far lower
    assert metrics["rougeL"] >= 60, metrics
    assert metrics["rougeL"] > metrics["lead1"]["rougeL"] + 10, metrics
    assert set(metrics["ci95"]) == {"rougeL", "rouge1", "rouge2"}
    reloaded = evaluate_run(output, pairs["eval"])
    assert reloaded["rougeL"] == pytest.approx(metrics["rougeL"])
    count = predict_file(output, pairs["eval"], str(tmp_path / "summaries.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "summaries.jsonl").read_text(encoding="utf-8").splitlines()]
    assert count == len(rows) == 40 and rows[0]["row"] == 1 and "went" in rows[0]["summary"]


def test_lora_trains_adapters_and_the_new_cross_attention_only(tiny_model, pairs, tmp_path) -> None:
    output = str(tmp_path / "lora")
    result = train(_config(tiny_model, "lora", pairs, output, epochs=2))
    assert result.metrics["trainable_parameters"] < result.metrics["total_parameters"] / 2
    predictor = load_predictor(output)
    trained = {n for n, p in predictor.model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trained) and any("crossattention" in n for n in trained)
    assert not any(".attention.self.query.base_layer" in n for n in trained)


def test_a_seq2seq_checkpoint_is_used_whole(tmp_path, pairs) -> None:
    t5 = make_tiny_t5(tmp_path / "t5")
    task, model = _model(t5)
    assert type(model.backbone).__name__ == "T5ForConditionalGeneration"
    assert model.new_parameters() == []
    output = str(tmp_path / "run")
    result = train(_config(t5, "finetune", pairs, output, epochs=4))
    assert result.metrics["eval"]["num_examples"] == 40
    assert evaluate_run(output, pairs["eval"])["rougeL"] == pytest.approx(result.metrics["eval"]["rougeL"])


def test_finetune_options_work_on_an_encoder_decoder(tiny_model) -> None:
    from transferkit.core.contracts import TrainState
    from transferkit.strategies.finetune import Finetune, FinetuneConfig

    _, model = _model(tiny_model)
    strategy = Finetune(FinetuneConfig(freeze_layers=1, gradual_unfreeze=True, layerwise_lr_decay=0.8))
    strategy.prepare(model)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert "backbone.encoder.encoder.layer.0.attention.self.query.weight" in frozen
    assert "backbone.decoder.bert.encoder.layer.0.attention.self.query.weight" not in frozen  # decoder layers sit above
    groups = strategy.param_groups(model, 1e-3, 1e-3, 0.01)
    rates = sorted({group["lr"] for group in groups})
    assert len(rates) > 2 and max(rates) == pytest.approx(1e-3)
    unfreeze = strategy.callbacks()[0]
    unfreeze.on_epoch_start(TrainState(epoch=0), model)  # the top group (the LM head) trains first
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("decoder.cls" in n for n in trainable)
