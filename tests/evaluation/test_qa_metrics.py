"""SQuAD v1.1 exact match / F1 (parity with the official script), Chinese character F1, bootstrap CIs."""

from __future__ import annotations

import logging
import re
import string
from collections import Counter

import numpy as np
import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import one_line_error
from transferkit.evaluation.bootstrap import bootstrap_mean_ci, resample_indices
from transferkit.evaluation.qa import (
    cjk_tokenize,
    detect_language,
    exact_match,
    normalize_answer,
    question_scores,
    squad_metrics,
    token_f1,
)


# --- the official evaluate-v1.1.py functions, verbatim, as the parity reference -------------
def official_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def official_f1_score(prediction, ground_truth):
    prediction_tokens = official_normalize_answer(prediction).split()
    ground_truth_tokens = official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def official_exact_match_score(prediction, ground_truth):
    return official_normalize_answer(prediction) == official_normalize_answer(ground_truth)


def official_max_over(metric_fn, prediction, ground_truths):
    return max(metric_fn(prediction, gt) for gt in ground_truths)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("The Cat", "cat"),
    ("  An  apple, the PIE!  ", "apple pie"),
    ("theater", "theater"),          # articles are whole words only
    ("U.S. don't", "us dont"),       # punctuation removed inside words, no space left
    ("“Paris”", "“paris”"),          # the official script removes ASCII punctuation only
    ("the a an", ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected == official_normalize_answer(text)


@pytest.mark.parametrize(("prediction", "references", "em", "f1"), [
    ("The Cat", ["cat"], 1.0, 1.0),
    ("the cat", ["a cat"], 1.0, 1.0),
    ("the big cat", ["a cat"], 0.0, 2 / 3),           # P = 1/2, R = 1 ("big" is not an article)
    ("the Denver Broncos team", ["Broncos", "Denver Broncos"], 0.0, 0.8),  # max(0.5, 0.8)
    ("Denver Broncos", ["Carolina Panthers", "Denver Broncos"], 1.0, 1.0),
    ("cat cat", ["cat"], 0.0, 2 / 3),                 # multiset overlap: min(2, 1) = 1
    ("dog", ["cat"], 0.0, 0.0),
    ("the", ["a"], 1.0, 0.0),                         # both normalise to "": EM 1 but F1 0 in v1.1
])
def test_exact_match_and_f1_hand_computed(prediction, references, em, f1):
    assert exact_match(prediction, references) == em == float(official_max_over(official_exact_match_score, prediction, references))
    assert token_f1(prediction, references) == pytest.approx(f1)
    assert token_f1(prediction, references) == pytest.approx(official_max_over(official_f1_score, prediction, references))
    assert token_f1(prediction, references[0]) == pytest.approx(official_f1_score(prediction, references[0]))  # a str works


def test_chinese_character_level():
    assert cjk_tokenize("北京，iPhone 6！ＡＢＣ") == ["北", "京", "iphone", "6", "abc"]
    assert exact_match("北京。", ["北京"], "zh") == 1.0
    assert exact_match("北 京", ["北京"], "zh") == 1.0              # whitespace removed
    assert exact_match("“北京”", ["北京"], "zh") == 1.0             # full-width punctuation removed
    assert token_f1("北京市", ["北京"], "zh") == pytest.approx(0.8)  # P = 2/3, R = 1
    assert token_f1("上海", ["北京", "上海市"], "zh") == pytest.approx(0.8)
    # auto detects Chinese from the references; English normalisation would see one token each
    assert token_f1("北京市", ["北京"], "auto") == pytest.approx(0.8)
    assert token_f1("北京市", ["北京"], "en") == 0.0
    assert detect_language(["北京是首都", "Beijing"]) == "zh" and detect_language(["Beijing city 北"]) == "en"


def test_squad_metrics_dict_and_list():
    references = [["Denver Broncos", "Broncos"], ["the cat"], ["Paris"], ["Santa Clara"]]
    ids = ["a", "b", "c", "d"]
    predictions = {"a": "Broncos", "b": "a big cat", "c": "London", "d": "Santa Clara, California"}
    result = squad_metrics(predictions, references, ids=ids, n_resamples=200)
    assert result["exact_match"] == pytest.approx(25.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0 + 0.8) / 4)
    assert result["num_examples"] == 4 and result["num_missing"] == 0 and result["language"] == "en"
    low, high = result["f1_ci"]
    assert 0 <= low <= result["f1"] <= high <= 100
    assert squad_metrics([predictions[i] for i in ids], references, n_resamples=200) == result


def test_squad_metrics_missing_predictions_score_zero(caplog):
    references = [[{"text": "Paris", "answer_start": 0}], [{"text": "Rome", "answer_start": 3}]]  # QAExamples.answers
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        result = squad_metrics({"a": "Paris"}, references, ids=["a", "b"], n_resamples=50)
    assert result["exact_match"] == 50.0 and result["num_missing"] == 1
    assert "1 of 2 questions have no prediction" in caplog.text


def test_squad_metrics_bad_input():
    one_line_error(lambda: squad_metrics({"a": "x"}, [["x"]]), "pass ids=")
    one_line_error(lambda: squad_metrics(["x", "y"], [["x"]]), "2 predictions for 1 questions")
    one_line_error(lambda: squad_metrics(["x"], [[]]), "references[0]")
    one_line_error(lambda: squad_metrics([], []), "no questions")
    one_line_error(lambda: squad_metrics(["x"], [["x"]], language="fr"), "unknown language 'fr'")
    one_line_error(lambda: squad_metrics(["x"], [["x"]], confidence=1.5), "confidence")
    one_line_error(lambda: exact_match("x", []), "at least one reference")


def test_bootstrap_mean_ci_matches_a_direct_computation():
    values = np.random.default_rng(1).random(37)
    means = np.concatenate([values[index].mean(axis=1) for index in resample_indices(37, 300, 4, 300)])
    expected = np.quantile(means, [0.05, 0.95])
    assert bootstrap_mean_ci(values, n_resamples=300, confidence=0.9, seed=4) == pytest.approx(expected.tolist())
    assert bootstrap_mean_ci([1.0, 1.0, 1.0]) == [1.0, 1.0]
    one_line_error(lambda: bootstrap_mean_ci([]), "no examples")


@pytest.mark.shared_data
def test_parity_with_the_official_script_on_squad_dev():
    """Score perturbed answers (answer + surrounding context) with ours and with the official code."""
    from transferkit.data.qa import read_squad

    examples = read_squad(str(SHARED_DATA / "squad_v1.1" / "dev-v1.1.articles-00-23.json")).subset(range(0, 5696, 4))
    predictions = []
    for k, (context, answers) in enumerate(zip(examples.contexts, examples.answers, strict=True)):
        first = answers[0]
        start, end = first["answer_start"], first["answer_start"] + len(first["text"])
        predictions.append(context[max(0, start - 3 * (k % 4)) : end + 5 * (k % 3)])
    references = [[a["text"] for a in answers] for answers in examples.answers]
    scores = question_scores(predictions, references, language="en")
    official_em = [official_max_over(official_exact_match_score, p, r) for p, r in zip(predictions, references, strict=True)]
    official_f1 = [official_max_over(official_f1_score, p, r) for p, r in zip(predictions, references, strict=True)]
    assert scores["exact_match"].tolist() == [float(v) for v in official_em]
    assert scores["f1"] == pytest.approx(official_f1, abs=1e-12)
    result = squad_metrics(predictions, examples.answers, n_resamples=200)
    assert result["f1"] == pytest.approx(100 * np.mean(official_f1)) and result["language"] == "en"
    assert 5 < result["exact_match"] < result["f1"] < 100
