"""Splits for token classification (sentences) and QA (whole articles held out)."""

from __future__ import annotations

import pytest

from tests.helpers import one_line_error
from transferkit.core.config import DataConfig
from transferkit.tasks import (
    QuestionAnsweringConfig,
    QuestionAnsweringTask,
    SummarizationConfig,
    SummarizationTask,
    TokenClassificationConfig,
    TokenClassificationTask,
)
from transferkit.testing import write_toy_conll, write_toy_pairs, write_toy_squad


def test_tagged_splits_budget_and_labels(tmp_path) -> None:
    path = write_toy_conll(str(tmp_path / "train.conll"), 200, seed=0)
    splits = TokenClassificationTask.read_splits(DataConfig(train=path, eval_fraction=0.1, budget=50), TokenClassificationConfig(), 1)
    assert len(splits.eval) == 20 and len(splits.train) == 50
    assert splits.labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    other = TokenClassificationTask.read_splits(DataConfig(train=path, eval_fraction=0.1, budget=50), TokenClassificationConfig(), 2)
    assert other.eval.tokens == splits.eval.tokens and other.train.tokens != splits.train.tokens
    bioes = TokenClassificationTask.read_splits(DataConfig(train=path), TokenClassificationConfig(scheme="bioes"), 0)
    assert "S-PER" in bioes.labels and "E-LOC" in bioes.labels


def test_qa_splits_hold_out_whole_articles(tmp_path) -> None:
    path = write_toy_squad(str(tmp_path / "train.json"), 80, seed=0, articles=4)
    splits = QuestionAnsweringTask.read_splits(DataConfig(train=path, eval_fraction=0.25, max_train_examples=30), QuestionAnsweringConfig(), 0)
    assert set(splits.eval.titles) == {"article 3"} and "article 3" not in set(splits.train.titles)
    assert len(splits.train) == 30 and len(splits.eval) == 20


def test_format_squad_reads_squad_json_whatever_the_file_name(tmp_path) -> None:
    path = write_toy_squad(str(tmp_path / "train.data"), 40, seed=0, articles=4)
    splits = QuestionAnsweringTask.read_splits(DataConfig(train=path, format="squad", eval_fraction=0.25), QuestionAnsweringConfig(), 0)
    assert len(splits.train) == 30 and len(splits.eval) == 10


def test_summarization_splits_hold_out_a_seeded_fraction_and_budget_counts_pairs(tmp_path) -> None:
    path = write_toy_pairs(str(tmp_path / "pairs.jsonl"), 100, seed=0)
    config = DataConfig(train=path, eval_fraction=0.2, budget=30)
    first = SummarizationTask.read_splits(config, SummarizationConfig(), 0)
    again = SummarizationTask.read_splits(config, SummarizationConfig(), 0)
    other = SummarizationTask.read_splits(config, SummarizationConfig(), 1)
    assert len(first.train) == 30 and len(first.eval) == 20
    assert first.train.sources == again.train.sources and first.eval.sources == other.eval.sources
    assert first.train.sources != other.train.sources  # the budget is drawn per seed, the eval split is fixed
    assert not set(first.train.rows) & set(first.eval.rows)


def test_qa_split_needs_two_articles(tmp_path) -> None:
    path = write_toy_squad(str(tmp_path / "one.json"), 10, seed=0, articles=1)
    one_line_error(lambda: QuestionAnsweringTask.read_splits(DataConfig(train=path), QuestionAnsweringConfig(), 0),
                   "article title", "--eval")


@pytest.mark.parametrize("kind", ["tagged", "qa", "seq2seq"])
def test_missing_training_file_is_one_line_error(kind: str) -> None:
    config = {"tagged": TokenClassificationConfig(), "qa": QuestionAnsweringConfig(), "seq2seq": SummarizationConfig()}[kind]
    task = {"tagged": TokenClassificationTask, "qa": QuestionAnsweringTask, "seq2seq": SummarizationTask}[kind]
    one_line_error(lambda: task.read_splits(DataConfig(), config, 0), "no training data")
