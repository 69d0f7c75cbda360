"""to_examples / check_trainable: column, text and label validation."""

from __future__ import annotations

import pytest

from tests.helpers import one_line_error
from transferkit.data import LabelMap, Table, check_trainable, to_examples


def table(source: str = "train.csv", unit: str = "line", **columns) -> Table:
    n = len(next(iter(columns.values())))
    return Table(columns=list(columns), data=columns, rows=list(range(2, n + 2)), source=source, unit=unit)


def test_training_builds_the_label_map_and_strips_text():
    data = table(text=["  good movie ", "bad\n", "ok"], label=["pos", "neg", "pos"])
    examples, labels = to_examples(data, "text", "label")
    assert labels.names == ["neg", "pos"]
    assert examples.texts == ["good movie", "bad", "ok"]
    assert examples.labels == [1, 0, 1]
    assert examples.rows == [2, 3, 4] and examples.source == "train.csv"
    assert examples.text_pairs is None


def test_eval_uses_the_given_map():
    training = LabelMap(["0", "1"])
    examples, labels = to_examples(table("dev.tsv", text=["a", "b"], label=["1", 0]), "text", "label", label_map=training)
    assert labels is training and examples.labels == [1, 0]


def test_eval_label_unseen_in_training():
    data = table("dev.tsv", text=["a", "b", "c"], label=["neg", "pos", "neutral"])
    one_line_error(lambda: to_examples(data, "text", "label", label_map=LabelMap(["neg", "pos"])),
                   "dev.tsv line 4", "'neutral'", "never saw")


def test_text_pairs():
    data = table(premise=["p1", "p2"], hypothesis=[" h1", "h2 "], label=[0, 1])
    examples, _ = to_examples(data, "premise", "label", text_pair_column="hypothesis")
    assert examples.text_pairs == ["h1", "h2"]
    data = table(premise=["p1", "p2"], hypothesis=["h1", None], label=[0, 1])
    one_line_error(lambda: to_examples(data, "premise", "label", text_pair_column="hypothesis"),
                   "train.csv line 3", "'hypothesis'")


def test_missing_column_lists_columns_found():
    data = table(sentence=["a"], label=[0])
    message = one_line_error(lambda: to_examples(data, "text", "label"), "train.csv", "'text'", "'sentence', 'label'")
    assert "data.text_column" in message
    one_line_error(lambda: to_examples(table(sentence=["a"]), "sentence", "label"), "'label'", "data.label_column")
    one_line_error(lambda: to_examples(data, "sentence", "label", text_pair_column="b"), "'b'", "data.text_pair_column")


@pytest.mark.parametrize("bad", ["", "   ", None, float("nan")])
def test_empty_text_names_file_and_row(bad):
    data = table("hf:x@train", "row", text=["fine", "also fine", bad, bad], label=[0, 1, 0, 1])
    message = one_line_error(lambda: to_examples(data, "text", "label"), "hf:x@train row 4", "'text'")
    assert "1 more" in message


def test_prediction_input_without_labels():
    examples, labels = to_examples(table(text=["a", "b"]), "text", "label", require_labels=False)
    assert examples.labels is None and labels is None
    examples, labels = to_examples(table(text=["a"]), "text", "label", label_map=LabelMap(["x"]), require_labels=False)
    assert examples.labels is None and labels.names == ["x"]


def test_non_string_text_values():
    examples, _ = to_examples(table(text=[12, "b"], label=[0, 1]), "text", "label")
    assert examples.texts == ["12", "b"]
    one_line_error(lambda: to_examples(table(text=[["a"], "b"], label=[0, 1]), "text", "label"), "line 2", "list")


def test_check_trainable():
    examples, labels = to_examples(table(text=["a", "b"], label=["pos", "pos"]), "text", "label")
    one_line_error(lambda: check_trainable(examples, labels), "train.csv", "single class 'pos'", "at least 2")
    examples, labels = to_examples(table(text=["a", "b"], label=["pos", "neg"]), "text", "label")
    check_trainable(examples, labels)
    unlabeled, _ = to_examples(table(text=["a"]), "text", "label", require_labels=False)
    one_line_error(lambda: check_trainable(unlabeled, labels), "no labels")
