"""Length-sorted inference batches: bounded by examples and by padded tokens, every row once, order restored."""

from __future__ import annotations

import numpy as np
import torch

from transferkit.data.collate import PaddingCollator
from transferkit.modules.inference import length_batches, run_batches


def test_batches_cover_every_row_once_within_both_budgets() -> None:
    lengths = np.random.default_rng(0).integers(1, 300, size=500)
    batches = length_batches(lengths, batch_size=128, max_tokens=4096)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    for batch in batches:
        assert len(batch) <= 128
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 4096
    assert [len(b) for b in length_batches(np.full(300, 10), 128)] == [128, 128, 44]  # short texts: full batches
    assert {len(b) for b in length_batches(np.full(64, 128), 128)} == {32}  # 128 tokens: 32 per batch


def test_a_text_longer_than_the_budget_still_gets_a_batch() -> None:
    assert [len(b) for b in length_batches(np.array([9000, 5, 5]), 8, max_tokens=4096)] == [1, 2]


def test_outputs_come_back_in_input_order() -> None:
    features = [{"input_ids": list(range(1, n + 1)), "attention_mask": [1] * n} for n in (3, 40, 7, 40, 1, 12)]

    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:  # each row's real length
        return batch["attention_mask"].sum(1, keepdim=True).float()

    out = run_batches(forward, features, PaddingCollator(0), batch_size=2)
    assert out[:, 0].tolist() == [3, 40, 7, 40, 1, 12]
