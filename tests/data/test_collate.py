"""PaddingCollator: dynamic padding, dtypes, pass-through keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferkit.data import PaddingCollator


def features() -> list[dict]:
    return [
        {"input_ids": [101, 7, 102], "attention_mask": [1, 1, 1], "token_type_ids": [0, 0, 0], "labels": 1},
        {"input_ids": [101, 102], "attention_mask": [1, 1], "token_type_ids": [0, 0], "labels": 0},
        {"input_ids": [101, 5, 6, 7, 102], "attention_mask": [1] * 5, "token_type_ids": [0, 0, 1, 1, 1], "labels": 2},
    ]


def test_pads_to_longest_in_batch():
    batch = PaddingCollator(pad_token_id=9)(features())
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].shape == (3, 5) and batch["input_ids"].dtype == torch.long
    assert batch["input_ids"].tolist() == [[101, 7, 102, 9, 9], [101, 102, 9, 9, 9], [101, 5, 6, 7, 102]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 1, 1]]
    assert batch["labels"].tolist() == [1, 0, 2] and batch["labels"].dtype == torch.long


def test_width_is_dynamic_and_can_round_up():
    short = [{"input_ids": [1, 2]}, {"input_ids": [3]}]
    assert PaddingCollator(0)(short)["input_ids"].shape == (2, 2)
    assert PaddingCollator(0, pad_to_multiple_of=8)(short)["input_ids"].shape == (2, 8)


def test_features_and_numpy_inputs():
    batch = PaddingCollator(0)([
        {"input_ids": np.array([1, 2, 3]), "features": np.ones(4), "labels": np.int64(1), "domain": 0},
        {"input_ids": np.array([4]), "features": [0.5, 0.5, 0.5, 0.5], "labels": 0, "domain": 1},
    ])
    assert batch["features"].dtype == torch.float32 and batch["features"].shape == (2, 4)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["domain"].tolist() == [0, 1]


def test_per_token_features_are_zero_padded_like_the_input_ids():
    states = [np.arange(6, dtype=np.float32).reshape(3, 2), np.full((1, 2), 7.0, dtype=np.float16)]
    rows = [{"input_ids": [1, 2, 3], "features": states[0], "labels": [0, 1, -100], "_example": 0},
            {"input_ids": [4], "features": states[1], "labels": [2], "_example": 1}]
    batch = PaddingCollator(0)(rows)
    assert batch["features"].shape == (2, 3, 2) and batch["features"].dtype == torch.float32
    assert batch["features"][0].tolist() == states[0].tolist()
    assert batch["features"][1].tolist() == [[7.0, 7.0], [0.0, 0.0], [0.0, 0.0]]
    assert batch["labels"].tolist() == [[0, 1, -100], [2, -100, -100]] and "_example" not in batch
    rounded = PaddingCollator(0, pad_to_multiple_of=4)(rows)
    assert rounded["features"].shape[:2] == rounded["input_ids"].shape == rounded["labels"].shape == (2, 4)

def test_bad_arguments():
    with pytest.raises(ValueError):
        PaddingCollator(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PaddingCollator(0)([])


def test_works_with_a_dataloader():
    loader = torch.utils.data.DataLoader(features(), batch_size=2, collate_fn=PaddingCollator(0))
    shapes = [tuple(batch["input_ids"].shape) for batch in loader]
    assert shapes == [(2, 3), (1, 5)]
