"""LabelMap: normalisation, ordering, encoding errors, atomic save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import one_line_error
from transferkit.data import LabelMap, normalize_label


@pytest.mark.parametrize("value", [1, 1.0, "1", " 1 ", "1.0", np.int64(1), np.float32(1.0), "+1"])
def test_int_like_values_normalise_to_the_same_label(value):
    assert normalize_label(value) == "1"


@pytest.mark.parametrize("value", [None, float("nan"), "", "   ", np.float64("nan")])
def test_missing_values(value):
    assert normalize_label(value) is None


def test_other_values():
    assert normalize_label(" pos ") == "pos"
    assert normalize_label(0.5) == "0.5"
    assert normalize_label(-2) == "-2"


def test_from_values_sorts_numerically_when_int_like():
    assert LabelMap.from_values([10, "2", 1.0, "10", 2]).names == ["1", "2", "10"]
    assert LabelMap.from_values(["pos", "neg", "neutral", "neg"]).names == ["neg", "neutral", "pos"]
    assert LabelMap.from_values(["10", "b", "2"]).names == ["10", "2", "b"]  # mixed: string order


def test_encode_and_decode():
    labels = LabelMap.from_values(["0", "1"])
    assert labels.encode([1, 0.0, "1", "0"]) == [1, 0, 1, 0]
    assert labels.decode([1, 0]) == ["1", "0"]
    assert len(labels) == 2


def test_encode_unseen_labels_names_them_row_file_and_known():
    labels = LabelMap(["neg", "pos"])
    message = one_line_error(
        lambda: labels.encode(["pos", "neutral", "neg", "mixed", "neutral"], "dev.csv", [2, 3, 4, 5, 6], "line"),
        "dev.csv line 3", "labels that training never saw", "'neutral'", "'mixed'", "'neg', 'pos'",
    )
    assert "3 rows" in message


@pytest.mark.parametrize("missing", [None, float("nan"), "", "  "])
def test_missing_label_is_an_error_with_row(missing):
    one_line_error(lambda: LabelMap.from_values(["a", "b", missing], "t.jsonl", [1, 2, 5], "line"),
                   "t.jsonl line 5", "missing label")
    one_line_error(lambda: LabelMap(["a", "b"]).encode(["a", missing], "e.csv", [2, 3], "line"), "e.csv line 3")


def test_non_scalar_label_is_an_error():
    one_line_error(lambda: LabelMap.from_values(["a", ["b"]], "t.jsonl", [1, 2], "line"), "t.jsonl line 2", "list")


def test_duplicate_names_rejected():
    one_line_error(lambda: LabelMap(["a", "a"]), "duplicate")


def test_save_load_round_trip(tmp_path):
    labels = LabelMap.from_values([2, 0, 1, 1.0])
    path = tmp_path / "sub" / "labels.json"
    labels.save(str(path))
    assert json.loads(path.read_text()) == {"labels": ["0", "1", "2"]}
    assert LabelMap.load(str(path)) == labels
    assert [p.name for p in path.parent.iterdir()] == ["labels.json"]  # no temp file left
    LabelMap(["négatif", "positif"]).save(str(path))  # overwrite in place, unicode kept
    assert LabelMap.load(str(path)).names == ["négatif", "positif"]


def test_load_errors(tmp_path):
    one_line_error(lambda: LabelMap.load(str(tmp_path / "none.json")), "file not found")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    one_line_error(lambda: LabelMap.load(str(bad)), str(bad), "labels")
    bad.write_text('{"names": ["a"]}')
    one_line_error(lambda: LabelMap.load(str(bad)), str(bad), "'labels'")

