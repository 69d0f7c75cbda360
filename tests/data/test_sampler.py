"""LengthGroupedBatchSampler: coverage, determinism, resume, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferkit.core.errors import UserError
from transferkit.data import LengthGroupedBatchSampler


def random_lengths(n: int = 3000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(3.2, 0.7, size=n).astype(int), 2, 512)


def padded_tokens(lengths: np.ndarray, batches: list[list[int]]) -> int:
    return int(sum(len(batch) * lengths[batch].max() for batch in batches))


@pytest.mark.parametrize("group", [True, False])
def test_every_index_once_per_epoch_and_batch_sizes(group):
    lengths = random_lengths(1003)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=32, seed=5, group_by_length=group, megabatch_size=4)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 32
        flat = np.concatenate(batches)
        assert np.array_equal(np.sort(flat), np.arange(1003))
        assert sorted(len(b) for b in batches)[1:] == [32] * 31 and sum(map(len, batches)) == 1003
        assert all(isinstance(i, int) for i in batches[0])


def test_longest_batch_first_and_batches_sorted_within_megabatch():
    lengths = random_lengths(2000)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=16, seed=0, megabatch_size=8)
    batches = list(sampler)
    assert int(np.argmax(lengths)) in batches[0]
    for batch in batches:
        assert np.all(np.diff(lengths[batch]) <= 0)  # longest first inside each batch


def test_deterministic_per_seed_and_epoch():
    lengths = random_lengths(500)
    a = LengthGroupedBatchSampler(lengths, 8, seed=1)
    b = LengthGroupedBatchSampler(lengths, 8, seed=1)
    assert list(a) == list(b)
    epoch0 = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != epoch0
    c = LengthGroupedBatchSampler(lengths, 8, seed=2)
    assert list(c) != epoch0
    a.set_epoch(0)
    assert list(a) == epoch0


def test_start_batch_gives_the_suffix_of_the_epoch():
    lengths = random_lengths(300)
    sampler = LengthGroupedBatchSampler(lengths, 10, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.start_batch = 7
    assert len(sampler) == len(full) - 7
    assert list(sampler) == full[7:]
    sampler.set_epoch(2)
    assert sampler.start_batch == 0 and list(sampler) == full
    sampler.start_batch = 1000
    assert len(sampler) == 0 and list(sampler) == []


def test_grouping_cuts_padding():
    lengths = random_lengths(4000)
    grouped = list(LengthGroupedBatchSampler(lengths, 32, seed=0, group_by_length=True))
    shuffled = list(LengthGroupedBatchSampler(lengths, 32, seed=0, group_by_length=False))
    assert padded_tokens(lengths, grouped) < 0.6 * padded_tokens(lengths, shuffled)


def test_no_shuffle_is_sequential():
    sampler = LengthGroupedBatchSampler([5, 1, 9, 3, 7], 2, seed=0, shuffle=False)
    assert list(sampler) == [[0, 1], [2, 3], [4]]


def test_dataloader_batch_sampler():
    sampler = LengthGroupedBatchSampler([3, 1, 2, 5, 4], 2, seed=0)
    loader = torch.utils.data.DataLoader(list(range(5)), batch_sampler=sampler)
    assert len(loader) == 3
    assert sorted(torch.cat(list(loader)).tolist()) == [0, 1, 2, 3, 4]


def test_empty_and_invalid():
    assert list(LengthGroupedBatchSampler([], 4, seed=0)) == []
    with pytest.raises(UserError, match="batch_size"):
        LengthGroupedBatchSampler([1, 2], 0, seed=0)
