"""ROUGE-1/2/L: hand-computed cases, the CJK pitfall, bootstrap CIs and the lead-1 baseline on real data."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer  # imported here: loading nltk costs ~1 s once, not per test

from tests.conftest import SHARED_DATA
from tests.helpers import one_line_error
from transferkit.data.seq2seq import lead_sentences, read_pairs, read_parallel
from transferkit.evaluation.rouge import CJKTokenizer, rouge_example_scores, rouge_scores


def test_chinese_pitfall_default_tokenizer_scores_zero():
    text = "林志颖公司疑涉虚假营销无厂房无研发"
    default = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(text, text)
    assert all(score.fmeasure == 0.0 for score in default.values())  # no tokens survive [a-z0-9]
    result = rouge_scores([text], [text], n_resamples=20)
    assert result["language"] == "zh"
    assert (result["rouge1"], result["rouge2"], result["rougeL"]) == (100.0, 100.0, 100.0)
    assert CJKTokenizer().tokenize("无厂房，iPhone6") == ["无", "厂", "房", "iphone6"]


def test_english_hand_computed():
    # unigrams 5/6 match; bigrams {the cat, on the, the mat} 3/5; LCS "the cat on the mat" = 5 of 6
    result = rouge_scores(["the cat sat on the mat"], ["the cat lay on the mat"], n_resamples=20)
    assert result["rouge1"] == pytest.approx(500 / 6)
    assert result["rouge2"] == pytest.approx(60.0)
    assert result["rougeL"] == pytest.approx(500 / 6)
    assert result["language"] == "en" and result["num_examples"] == 1
    assert rouge_scores(["Cats running."], ["cat run"], language="en", n_resamples=20)["rouge1"] == 100.0  # stemmer


def test_english_matches_rouge_score_with_its_default_stemming_tokenizer():
    predictions = ["The runners were running quickly, said officials.", "Generalization studies", "a b c", ""]
    references = ["Officials say runners ran quick races.", "generalizing studied hypotheses", "c b a", "empty"]
    reference = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    ours = rouge_example_scores(predictions, references, language="en")
    for k, (prediction, target) in enumerate(zip(predictions, references, strict=True)):
        expected = reference.score(target, prediction)
        assert [ours[name][k] for name in expected] == [expected[name].fmeasure for name in expected]


def test_chinese_hand_computed_and_multi_reference():
    # prediction 北京大学 vs reference 北京: R1 P = 2/4, R = 1 -> 2/3; R2 P = 1/3, R = 1 -> 1/2
    scores = rouge_example_scores(["北京大学"], ["北京"], language="zh")
    assert scores["rouge1"][0] == pytest.approx(2 / 3) and scores["rouge2"][0] == pytest.approx(0.5)
    several = rouge_example_scores(["北京大学"], [["上海", "北京大学"]], language="zh")
    assert several["rougeL"][0] == pytest.approx(1.0)  # max over references


def test_means_and_bootstrap_intervals():
    predictions = ["the cat sat", "a dog ran", "birds fly high", "nothing here"]
    references = ["the cat sat", "a dog walked", "birds fly", "something else"]
    per_document = rouge_example_scores(predictions, references)
    result = rouge_scores(predictions, references, n_resamples=300, seed=1)
    for name in ("rouge1", "rouge2", "rougeL"):
        assert result[name] == pytest.approx(100 * per_document[name].mean())
        low, high = result[f"{name}_ci"]
        assert 0 <= low <= result[name] <= high <= 100
    assert rouge_scores(predictions, references, n_resamples=300, seed=1) == result


def test_bad_input():
    one_line_error(lambda: rouge_scores(["a", "b"], ["a"]), "2 predictions for 1 references")
    one_line_error(lambda: rouge_scores("a", ["a"]), "lists of texts")
    one_line_error(lambda: rouge_scores([], []), "no summaries")
    one_line_error(lambda: rouge_scores(["a"], [[]]), "at least one reference")
    one_line_error(lambda: rouge_scores(["a"], ["a"], language="de"), "unknown language 'de'")


@pytest.mark.shared_data
def test_lead1_baseline_on_xsum_sample():
    pairs = read_pairs(str(SHARED_DATA / "xsum_sample" / "sample-000-799.jsonl"))
    result = rouge_scores([lead_sentences(d) for d in pairs.sources], pairs.targets)
    print("xsum_sample lead-1 (800 docs):", {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})
    assert result["language"] == "en" and result["num_examples"] == 800
    # the published XSum LEAD baseline is about 16.3 / 1.6 / 12.0 (Narayan et al. 2018)
    assert 14 < result["rouge1"] < 18 and 1 < result["rouge2"] < 3 and 10 < result["rougeL"] < 14


@pytest.mark.shared_data
def test_lead1_baseline_on_lcsts():
    folder = SHARED_DATA / "lcsts"
    pairs = read_parallel(str(folder / "src.000-8665.txt"), str(folder / "tgt.000-8665.txt")).subset(range(2000))
    result = rouge_scores([lead_sentences(d) for d in pairs.sources], pairs.targets)
    print("lcsts lead-1 (first 2,000 pairs):", {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})
    assert result["language"] == "zh" and result["num_examples"] == 2000
    assert 20 < result["rouge1"] < 30 and 10 < result["rouge2"] < 20 and 15 < result["rougeL"] < 25
