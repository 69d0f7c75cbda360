"""Entity-level NER metrics: conlleval parity, strict seqeval parity, bootstrap interval."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from tests.helpers import one_line_error
from transferkit.evaluation.bootstrap import resample_indices
from transferkit.evaluation.ner import entity_f1_ci, entity_metrics

DATA = Path(__file__).resolve().parent / "data"

# conlleval's summary for each file, obtained once by running seqeval 1.2.2's tests/conlleval.pl
# (version 2004-01-26; not copied here: its header states no licence) as `perl conlleval.pl < FILE`:
#   seqeval_ground_truth.txt: processed 961 tokens with 459 phrases; found: 539 phrases; correct: 371.
#                             accuracy:  84.08%; precision:  68.83%; recall:  80.83%; FB1:  74.35
#   random_bio.txt:           processed 1000 tokens with 611 phrases; found: 607 phrases; correct: 86.
#                             accuracy:  16.20%; precision:  14.17%; recall:  14.08%; FB1:  14.12
# random_bio.txt was generated like seqeval's test_metrics.generate_eval_data (1000 tokens, gold and guessed
# tag each O or a random B-/I- prefix and type among PER MISC ORG LOC, a sentence break with probability 0.05)
# with random.Random(20240): it is full of I- tags after O or after another type.
CONLLEVAL = {
    "seqeval_ground_truth.txt": {"accuracy": 84.08, "precision": 68.83, "recall": 80.83, "f1": 74.35,
                                 "counts": (459, 539, 371)},
    "random_bio.txt": {"accuracy": 16.20, "precision": 14.17, "recall": 14.08, "f1": 14.12,
                       "counts": (611, 607, 86)},
}


def load_pairs(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and guessed tags (last two columns) of a conlleval input file, as seqeval's tests read it."""
    references, predictions, gold, guess = [], [], [], []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.strip():
            *_, true_tag, predicted_tag = line.split(" ")
            gold.append(true_tag)
            guess.append(predicted_tag)
        elif gold:
            references.append(gold)
            predictions.append(guess)
            gold, guess = [], []
    return references, predictions


@pytest.mark.parametrize("name", sorted(CONLLEVAL))
def test_conlleval_figures_are_reproduced(name):
    expected = CONLLEVAL[name]
    references, predictions = load_pairs(DATA / name)
    metrics = entity_metrics(references, predictions)
    conlleval = metrics["conlleval"]
    for key in ("precision", "recall", "f1"):
        assert round(100 * conlleval[key], 2) == expected[key], key
    assert round(100 * metrics["token_accuracy"], 2) == expected["accuracy"]
    gold, found, correct = expected["counts"]
    assert conlleval["precision"] == pytest.approx(correct / found)
    assert conlleval["recall"] == pytest.approx(correct / gold)


@pytest.mark.parametrize("name", sorted(CONLLEVAL))
def test_strict_numbers_match_seqeval_strict_mode(name):
    references, predictions = load_pairs(DATA / name)
    metrics = entity_metrics(references, predictions)
    report = classification_report(references, predictions, mode="strict", scheme=IOB2, output_dict=True,
                                   zero_division=0)
    micro = report["micro avg"]
    assert metrics["precision"] == pytest.approx(micro["precision"])
    assert metrics["recall"] == pytest.approx(micro["recall"])
    assert metrics["f1"] == pytest.approx(micro["f1-score"])
    assert metrics["num_gold"] == micro["support"]
    types = {key for key in report if not key.endswith(" avg")}
    assert set(metrics["per_type"]) == types
    for kind in types:
        ours, theirs = metrics["per_type"][kind], report[kind]
        assert ours["precision"] == pytest.approx(theirs["precision"])
        assert ours["recall"] == pytest.approx(theirs["recall"])
        assert ours["f1"] == pytest.approx(theirs["f1-score"])
        assert ours["support"] == theirs["support"]


def test_strict_and_conlleval_differ_on_an_entity_starting_with_i():
    metrics = entity_metrics([["B-ORG", "I-ORG", "O", "B-PER"]], [["I-ORG", "I-ORG", "O", "B-PER"]])
    assert metrics["conlleval"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert metrics["precision"] == 1.0 and metrics["recall"] == 0.5 and metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["per_type"] == {
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    }
    assert metrics["token_accuracy"] == 0.75
    assert (metrics["num_gold"], metrics["num_predicted"], metrics["num_correct"]) == (2, 1, 1)


def test_no_entities_gives_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = entity_metrics([["O", "O"]], [["O", "O"]])
    assert metrics["f1"] == 0.0 and metrics["conlleval"]["f1"] == 0.0 and metrics["per_type"] == {}
    assert metrics["token_accuracy"] == 1.0


def test_bad_input_gives_one_line_errors():
    one_line_error(lambda: entity_metrics([["O"]], []), "1 reference sentences but 0 predicted")
    one_line_error(lambda: entity_metrics([], []), "no sentences")
    one_line_error(lambda: entity_metrics([["O"], ["O", "O"]], [["O"], ["O"]]), "sentence 1: 2 reference tags but 1")
    one_line_error(lambda: entity_metrics([["S-PER"]], [["O"]]), "'S-PER'", "not IOB2", "from_bioes")
    one_line_error(lambda: entity_f1_ci([["O"]], [["O"]], n_resamples=0), "n_resamples")
    one_line_error(lambda: entity_f1_ci([["O"]], [["O"]], confidence=1.5), "confidence")


def noisy_predictions(seed: int, sentences: int) -> tuple[list[list[str]], list[list[str]]]:
    """Random IOB2 references and predictions that copy 80% of the tags."""
    rng = random.Random(seed)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    references = [[rng.choice(tags) for _ in range(rng.randint(1, 20))] for _ in range(sentences)]
    predictions = [[t if rng.random() < 0.8 else rng.choice(tags) for t in sentence] for sentence in references]
    return references, predictions


def test_bootstrap_resample_equals_metrics_of_the_resampled_sentences():
    references, predictions = noisy_predictions(0, 60)
    for seed in range(3):
        index = next(resample_indices(len(references), 1, seed, 1))[0]
        resampled = entity_metrics([references[i] for i in index], [predictions[i] for i in index])
        interval = entity_f1_ci(references, predictions, n_resamples=1, seed=seed)
        for key in ("precision", "recall", "f1"):
            assert interval[key] == pytest.approx([resampled[key], resampled[key]])


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    references, predictions = noisy_predictions(1, 1000)
    point = entity_metrics(references, predictions)
    interval = entity_f1_ci(references, predictions, n_resamples=1000, seed=0)
    for key in ("precision", "recall", "f1"):
        low, high = interval[key]
        assert low < point[key] < high and high - low < 0.15
    assert entity_f1_ci(references, predictions, n_resamples=1000, seed=0) == interval
    assert entity_f1_ci(references, predictions, n_resamples=1000, seed=1) != interval
    perfect = entity_f1_ci(references[:100], references[:100], n_resamples=50)
    assert np.allclose(perfect["f1"], [1.0, 1.0])
