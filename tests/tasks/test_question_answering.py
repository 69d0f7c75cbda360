"""Extractive QA: windows with offsets, span labels, n-best decoding back to characters, CLI train/evaluate/predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoTokenizer

from tests.helpers import run_cli
from transferkit.data.qa import QAExamples
from transferkit.tasks import QuestionAnsweringConfig, QuestionAnsweringTask
from transferkit.testing import write_toy_squad

CONTEXT = "the movie was good and alice was the actor in the film " * 3 + "but bob was the boring plot"
EXAMPLES = QAExamples(ids=["q1"], questions=["who was boring"], contexts=[CONTEXT],
                      answers=[[{"text": "bob", "answer_start": CONTEXT.index("bob")}]], titles=["t"])


@pytest.fixture(scope="module")
def tokenizer(tiny_model: str):
    return AutoTokenizer.from_pretrained(tiny_model)


def gold_logits(features: list[dict]) -> list[np.ndarray]:
    """Logits peaked on each window's labelled start and end token."""
    outputs = []
    for feature in features:
        logits = np.zeros((len(feature["input_ids"]), 2), dtype=np.float32)
        start, end = feature["labels"]
        logits[start, 0] = logits[end, 1] = 10.0
        outputs.append(logits)
    return outputs


def test_long_context_windows_label_the_answer_once_and_decode_to_characters(tokenizer) -> None:
    task = QuestionAnsweringTask(QuestionAnsweringConfig(doc_stride=16))
    features = task.featurize(EXAMPLES, tokenizer, 48)
    assert len(features) > 1  # the context needed several windows
    inside = [f for f in features if f["labels"] != [0, 0]]
    assert inside, "some window must contain the answer"
    for feature in inside:
        start, end = feature["labels"]
        offsets = feature["_offsets"]
        assert CONTEXT[offsets[start][0]:offsets[end][1]] == "bob"
    answer = task.decode(gold_logits(features), features, EXAMPLES)[0]
    assert answer["text"] == "bob" and CONTEXT[answer["start"]:answer["end"]] == "bob"
    metrics = task.evaluate([answer], EXAMPLES)
    assert metrics["exact_match"] == 100.0 and metrics["f1"] == 100.0


def test_decoding_respects_max_answer_length(tokenizer) -> None:
    task = QuestionAnsweringTask(QuestionAnsweringConfig(max_answer_length=1))
    features = task.featurize(EXAMPLES, tokenizer, 128)
    logits = np.zeros((len(features[0]["input_ids"]), 2), dtype=np.float32)
    context = np.nonzero(features[0]["_offsets"][:, 0] >= 0)[0]
    logits[context[0], 0], logits[context[5], 1] = 10.0, 10.0  # the best pair is 6 tokens long
    answer = task.decode([logits], features[:1], EXAMPLES)[0]
    assert len(answer["text"].split()) == 1


def test_train_evaluate_predict_from_the_cli(tiny_model, tmp_path, capsys, monkeypatch) -> None:
    train = write_toy_squad(str(tmp_path / "train.json"), 240, seed=0)
    test = write_toy_squad(str(tmp_path / "test.json"), 40, seed=3)
    run_dir = str(tmp_path / "run")
    code, out, err = run_cli(["train", "--model", tiny_model, "--task", "question_answering", "--strategy", "finetune",
                              "--train", train, "--output", run_dir, "--set", "training.epochs=10",
                              "--set", "training.learning_rate=3e-3", "--set", "data.eval_fraction=0.25",
                              "--set", "training.progress=false"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["eval"]["f1"] >= 40
    code, out, err = run_cli(["evaluate", run_dir, "--data", test], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["f1"] >= 40, err
    predictions = str(tmp_path / "answers.jsonl")
    code, _, err = run_cli(["predict", run_dir, "--input", test, "--output", predictions], capsys, monkeypatch)
    assert code == 0, err
    with open(predictions, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert len(records) == 40 and all({"id", "text", "score", "start", "end"} <= set(r) for r in records)
