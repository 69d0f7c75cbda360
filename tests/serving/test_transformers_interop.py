"""A saved run's ``model/`` in transformers: the same logits and labels, or a clear error, never a random head.

Token classification, QA and summarization runs load with ``AutoModelFor...`` (and ``pipeline``) and give
transferkit's logits to 1e-5, so the task's own decoding of them gives transferkit's predictions; the
other runs (classification, a head on another layer, word vectors, LoRA deltas, TF-IDF) make transformers
raise, and ``export --format transformers`` converts exactly the runs that can be converted.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    pipeline,
)

from tests.helpers import one_line_error, run_cli
from transferkit.core.config import DataConfig, RunConfig
from transferkit.experiments.api import evaluate_run, export_run
from transferkit.experiments.run import train
from transferkit.modules.seq2seq import shift_right
from transferkit.serving import load_predictor
from transferkit.testing import write_toy_conll, write_toy_csv, write_toy_pairs, write_toy_squad

BACKBONE_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[str, str]]:
    root = tmp_path_factory.mktemp("interop_data")
    return {
        "classification": (write_toy_csv(str(root / "train.csv"), 120, 0), write_toy_csv(str(root / "eval.csv"), 40, 1)),
        "token_classification": (write_toy_conll(str(root / "train.conll"), 80, 0),
                                 write_toy_conll(str(root / "eval.conll"), 20, 1)),
        "question_answering": (write_toy_squad(str(root / "train.json"), 80, 0),
                               write_toy_squad(str(root / "eval.json"), 20, 1)),
        "summarization": (write_toy_pairs(str(root / "train.jsonl"), 80, 0),
                          write_toy_pairs(str(root / "eval.jsonl"), 12, 1)),
    }


def train_run(root, model: str, task: str, strategy: dict | str, files: dict, epochs: int = 2, **task_options) -> str:
    """A finished tiny run (every weight trained away from its initial value); returns its directory."""
    output = str(root / "run")
    train(RunConfig.from_dict({
        "model": model, "strategy": strategy, "output": output, "task": {"name": task, **task_options},
        "data": {"train": files[task][0], "eval": files[task][1], "text_column": "sentence", "max_length": 64},
        "training": {"epochs": epochs, "batch_size": 16, "learning_rate": 3e-3, "progress": False,
                     "checkpoint_every": 0},
    }))
    return output


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, tiny_model, files) -> str:
    return train_run(tmp_path_factory.mktemp("ner"), tiny_model, "token_classification", "finetune", files, epochs=3)


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory, tiny_model, files) -> str:
    return train_run(tmp_path_factory.mktemp("cls"), tiny_model, "classification", "finetune", files)


def model_dir(run: str) -> str:
    return os.path.join(run, "model")


def eval_examples(predictor, files: dict, task: str):
    return predictor.task.read(files[task][1], DataConfig(text_column="sentence"))


def only_the_unused_pooler(keys) -> bool:
    """Keys transformers reports on one side only: the encoder's sentence pooler, which no mapped head reads."""
    return all(".pooler." in key for key in keys)


def transformers_outputs(model, feature: dict):
    """One feature through a transformers model, unpadded."""
    inputs = {k: torch.tensor([feature[k]]) for k in BACKBONE_INPUTS if k in feature}
    with torch.no_grad():
        return model(**inputs)


def test_token_classification_run_loads_in_transformers_with_its_labels_and_logits(ner_run, files) -> None:
    predictor = load_predictor(ner_run)
    model, info = AutoModelForTokenClassification.from_pretrained(model_dir(ner_run), output_loading_info=True)
    assert type(model).__name__ == "BertForTokenClassification"
    assert not info["missing_keys"] and only_the_unused_pooler(info["unexpected_keys"]), info  # nothing new
    assert model.config.id2label == dict(enumerate(predictor.labels)) and len(predictor.labels) == 5
    examples = eval_examples(predictor, files, "token_classification")
    features = predictor.featurize(examples)
    ours = predictor.outputs(predictor.model, features)
    theirs = [transformers_outputs(model, feature).logits[0].numpy() for feature in features]
    for mine, other in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(other, mine, atol=1e-5)
    decoded = predictor.task.decode(theirs, features, examples, predictor.tokenizer)
    assert decoded == predictor.predict(examples)
    assert any(tag != "O" for tags in decoded for tag in tags)  # a trained head, not all-O


def test_token_classification_pipeline_tags_every_subword_as_transferkit_does(ner_run, files) -> None:
    predictor = load_predictor(ner_run)
    examples = eval_examples(predictor, files, "token_classification")
    tagger = pipeline("token-classification", model=model_dir(ner_run))
    for index in range(3):
        feature = predictor.featurize(examples.subset([index]))[0]
        assert tagger.tokenizer(" ".join(examples.tokens[index]))["input_ids"] == list(feature["input_ids"])
        logits = predictor.outputs(predictor.model, [feature])[0]
        expected = {position: predictor.labels[k] for position, k in enumerate(logits.argmax(-1))}
        found = tagger(" ".join(examples.tokens[index]), ignore_labels=[])
        assert found and all(expected[entity["index"]] == entity["entity"] for entity in found), (found, expected)


def test_question_answering_run_loads_in_transformers_with_the_same_start_and_end_logits(
        tmp_path_factory, tiny_model, files) -> None:
    run = train_run(tmp_path_factory.mktemp("qa"), tiny_model, "question_answering", "finetune", files)
    predictor = load_predictor(run)
    model, info = AutoModelForQuestionAnswering.from_pretrained(model_dir(run), output_loading_info=True)
    assert type(model).__name__ == "BertForQuestionAnswering"
    assert not info["missing_keys"] and only_the_unused_pooler(info["unexpected_keys"]), info
    examples = eval_examples(predictor, files, "question_answering")
    features = predictor.featurize(examples)
    ours = predictor.outputs(predictor.model, features)
    theirs = []
    for feature in features:
        outputs = transformers_outputs(model, feature)
        theirs.append(torch.stack([outputs.start_logits[0], outputs.end_logits[0]], -1).numpy())
    for mine, other in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(other, mine, atol=1e-5)
    assert predictor.task.decode(theirs, features, examples, predictor.tokenizer) == predictor.predict(examples)


def test_summarization_run_loads_as_a_seq2seq_lm_with_the_same_logits_and_summaries(
        tmp_path_factory, tiny_model, files) -> None:
    run = train_run(tmp_path_factory.mktemp("sum"), tiny_model, "summarization", "finetune", files,
                    max_target_length=12, num_beams=2)
    predictor = load_predictor(run)
    model, info = AutoModelForSeq2SeqLM.from_pretrained(model_dir(run), output_loading_info=True)
    assert type(model).__name__ == "EncoderDecoderModel"
    # only the encoder's sentence pooler, which EncoderDecoderModel builds and never reads, is new
    assert only_the_unused_pooler(info["missing_keys"]) and not info["unexpected_keys"], info
    examples = predictor.task.read(files["summarization"][1], DataConfig())
    features = predictor.featurize(examples)
    batch = predictor.collator(features)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    config = model.config
    with torch.no_grad():
        ours = predictor.model(batch)["logits"]
        decoder_inputs = shift_right(batch["labels"], config.decoder_start_token_id, config.pad_token_id)
        theirs = model(**inputs, decoder_input_ids=decoder_inputs).logits
        generated = model.generate(**inputs, **predictor.task.generation_options())
    np.testing.assert_allclose(theirs.numpy(), ours.numpy(), atol=1e-5)
    summaries = predictor.task.decode(list(generated.numpy()), features, examples, predictor.tokenizer)
    assert summaries == predictor.predict(examples)


def _layer_one_ner_run(tmp_path_factory, tiny_model, files) -> str:
    return train_run(tmp_path_factory.mktemp("ner1"), tiny_model, "token_classification", "finetune", files,
                     epochs=1, layer=1)


def _word_vectors_run(tmp_path_factory, tiny_vectors, files) -> str:
    return train_run(tmp_path_factory.mktemp("wv"), tiny_vectors, "classification", "word_vectors", files, epochs=1)


@pytest.mark.parametrize(("kind", "named"), [("classification", "ClassificationHead on layer -1 of a BertModel"),
                                             ("layer 1", "TokenHead on layer 1 of a BertModel"),
                                             ("word vectors", "of a WordVectorModel")])
def test_runs_without_a_transformers_head_are_refused_by_transformers_with_the_reason(
        kind: str, named: str, request, tmp_path_factory, tiny_model, files, tmp_path) -> None:
    run = {"classification": lambda: request.getfixturevalue("classification_run"),
           "layer 1": lambda: _layer_one_ner_run(tmp_path_factory, tiny_model, files),
           "word vectors": lambda: _word_vectors_run(tmp_path_factory, request.getfixturevalue("tiny_vectors"), files),
           }[kind]()
    directory = model_dir(run)
    loaders = [AutoConfig.from_pretrained, AutoModelForSequenceClassification.from_pretrained,
               AutoModelForTokenClassification.from_pretrained,
               lambda path: pipeline("text-classification", model=path)]
    for load in loaders:
        with pytest.raises(ValueError, match="not a transformers checkpoint") as info:
            load(directory)
        assert f"{named}) has no exact transformers equivalent" in str(info.value), str(info.value)
        assert "transferkit.load" in str(info.value)
    one_line_error(lambda: export_run(run, str(tmp_path / "hf"), to="transformers"),
                   "cannot export to transformers", named, "token_classification")
    assert not os.path.exists(tmp_path / "hf") and not os.path.exists(tmp_path / "hf.partial")


def test_a_refused_run_still_reloads_in_transferkit_with_its_metrics(classification_run, files) -> None:
    with open(os.path.join(classification_run, "metrics.json"), encoding="utf-8") as handle:
        measured = json.load(handle)["eval"]["accuracy"]
    assert evaluate_run(classification_run, files["classification"][1])["accuracy"] == pytest.approx(measured)


def test_a_run_saved_before_layouts_still_loads(classification_run, files, tmp_path) -> None:
    """Old directories: config.json is the backbone config, no ``layout`` in transferkit.json."""
    old = str(tmp_path / "old")
    shutil.copytree(classification_run, old)
    os.replace(os.path.join(old, "model", "backbone_config.json"), os.path.join(old, "model", "config.json"))
    meta_path = os.path.join(old, "model", "transferkit.json")
    with open(meta_path, encoding="utf-8") as handle:
        meta = json.load(handle)
    del meta["layout"]
    with open(meta_path, "w", encoding="utf-8") as handle:
        json.dump(meta, handle)
    examples = eval_examples(load_predictor(old), files, "classification")
    np.testing.assert_array_equal(load_predictor(old).predict(examples),
                                  load_predictor(classification_run).predict(examples))


def test_a_lora_delta_is_refused_and_exports_to_a_model_transformers_loads(tmp_path_factory, tiny_model, files,
                                                                             tmp_path) -> None:
    run = train_run(tmp_path_factory.mktemp("lora"), tiny_model, "token_classification", {"name": "lora", "r": 4},
                    files)
    with pytest.raises(ValueError, match="stores only a lora delta"):
        AutoModelForTokenClassification.from_pretrained(model_dir(run))
    exported = export_run(run, str(tmp_path / "hf"), to="transformers")
    model, info = AutoModelForTokenClassification.from_pretrained(exported, output_loading_info=True)
    assert not info["missing_keys"] and only_the_unused_pooler(info["unexpected_keys"]), info
    delta = load_predictor(run)
    examples = eval_examples(delta, files, "token_classification")
    features = delta.featurize(examples)
    for feature, mine in zip(features, delta.outputs(delta.model, features), strict=True):
        np.testing.assert_allclose(transformers_outputs(model, feature).logits[0].numpy(), mine, atol=1e-5)
    assert load_predictor(exported).predict(examples) == delta.predict(examples)


def test_tfidf_run_is_refused_by_transformers_and_by_export(tmp_path_factory, tiny_model, files, tmp_path) -> None:
    run = train_run(tmp_path_factory.mktemp("tfidf"), tiny_model, "classification", "tfidf", files)
    with pytest.raises(ValueError, match="Unrecognized model"):
        pipeline("text-classification", model=model_dir(run))
    one_line_error(lambda: export_run(run, str(tmp_path / "hf"), to="transformers"), "no neural weights",
                   "token_classification")


def test_export_command_converts_or_says_which_runs_can(ner_run, classification_run, tmp_path, capsys,
                                                        monkeypatch) -> None:
    target = tmp_path / "hf"
    code, out, _ = run_cli(["export", ner_run, "--format", "transformers", "--output", str(target)], capsys,
                           monkeypatch)
    assert code == 0 and "transformers model written" in out and not os.path.exists(str(target) + ".partial")
    tagger = pipeline("token-classification", model=str(target))
    assert tagger.model.config.id2label == dict(enumerate(load_predictor(str(target)).labels))
    code, _, err = run_cli(["export", classification_run, "--format", "transformers", "-o", str(tmp_path / "no")],
                           capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "question_answering" in err, err
    code, _, err = run_cli(["export", ner_run, "--format", "tflite", "-o", str(tmp_path / "tflite")], capsys, monkeypatch)
    assert code == 2 and "unknown format 'tflite'" in err and "transformers, onnx" in err and "Traceback" not in err
