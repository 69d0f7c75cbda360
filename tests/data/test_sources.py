"""Batch sources: one dataset, zipped datasets (shorter ones cycled), task mixing; exact resume from positions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import one_line_error
from transferkit.data.sources import MixedSources, SingleSource, ZippedSources


def rows(n: int, tag: str) -> list[dict]:
    return [{"input_ids": [1] * (1 + i % 7), "id": f"{tag}{i}"} for i in range(n)]


def ids(batch: list[dict]) -> list[str]:
    return [row["id"] for row in batch]


def single(n: int, tag: str, seed: int = 0, batch_size: int = 4) -> SingleSource:
    return SingleSource(rows(n, tag), collator=list, batch_size=batch_size, seed=seed)


def test_single_source_covers_every_example_once_per_epoch_and_reshuffles() -> None:
    source = single(10, "a")
    first = [ids(b) for b in source]
    assert sorted(sum(first, [])) == sorted(f"a{i}" for i in range(10)) and source.num_batches == 3
    source.set_epoch(1)
    assert [ids(b) for b in source] != first


def test_resume_skips_to_the_same_batches() -> None:
    source = single(40, "a")
    source.set_epoch(2)
    full = [ids(b) for b in source]
    source.set_epoch(2)
    source.start_batch = 4
    assert [ids(b) for b in source] == full[4:] and len(source) == len(full) - 4


def test_zipped_epoch_follows_the_longest_source_and_cycles_the_shorter() -> None:
    zipped = ZippedSources({"source": single(8, "s"), "target": single(20, "t", seed=1)})
    assert zipped.num_batches == 5
    steps = list(zipped)
    assert all(set(step) == {"source", "target"} for step in steps)
    source_ids = [ids(step["source"]) for step in steps]
    assert sorted(sum(source_ids[:2], [])) == sorted(f"s{i}" for i in range(8))  # 2 batches per pass
    assert sorted(sum(source_ids[2:4], [])) == sorted(f"s{i}" for i in range(8))  # then a new pass, reshuffled
    zipped.set_epoch(1)
    epoch_one = [ids(step["source"]) for step in zipped]
    assert epoch_one[0] == ids(single(8, "s").batch_at(5))  # cycling continues across epochs


def test_zipped_epoch_can_follow_a_lead_source_and_cycle_a_larger_one() -> None:
    zipped = ZippedSources({"source": single(8, "s"), "target": single(20, "t", seed=1)}, lead="source")
    assert zipped.num_batches == 2  # one pass over the labelled source, however large the target corpus
    zipped.set_epoch(1)
    targets = [ids(step["target"]) for step in zipped]
    assert targets[0] == ids(single(20, "t", seed=1).batch_at(2))  # the target continues where epoch 0 stopped
    with pytest.raises(ValueError, match="lead source 'nope'"):
        ZippedSources({"source": single(8, "s")}, lead="nope")


def test_zipped_resume_from_positions_matches_the_uninterrupted_order() -> None:
    def make() -> ZippedSources:
        return ZippedSources({"source": single(8, "s"), "target": single(20, "t", seed=1)})

    full = make()
    full.set_epoch(3)
    expected = [(ids(s["source"]), ids(s["target"])) for s in full]
    resumed = make()
    resumed.load_state_dict({"epoch": 3, "start_batch": 2, "sources": ["source", "target"]})
    assert [(ids(s["source"]), ids(s["target"])) for s in resumed] == expected[2:]
    one_line_error(lambda: resumed.load_state_dict({"sources": ["other"]}), "data.sources")


@pytest.mark.parametrize(("sampling", "temperature"), [("proportional", 1.0), ("temperature", 3.0)])
def test_mixed_sources_sample_tasks_with_n_to_the_one_over_t(sampling: str, temperature: float) -> None:
    mixed = MixedSources({"big": single(360, "b"), "small": single(40, "s")}, sampling, temperature, seed=0)
    sizes = np.array([90.0, 10.0])
    expected = sizes ** (1 / temperature) / (sizes ** (1 / temperature)).sum()
    np.testing.assert_allclose(mixed.probabilities(), expected)
    counts = np.bincount(np.concatenate([mixed.schedule(e) for e in range(30)]), minlength=2)
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.02)
    steps = list(mixed)
    assert len(steps) == 100 and all(len(step) == 1 for step in steps)


def test_mixed_round_robin_alternates_and_each_task_continues_where_it_left_off() -> None:
    mixed = MixedSources({"a": single(8, "a"), "b": single(8, "b")}, "round_robin")
    names = [next(iter(step)) for step in mixed]
    assert names == ["a", "b", "a", "b"]
    mixed.set_epoch(1)
    second = [step for step in mixed]
    assert ids(second[0]["a"]) == ids(single(8, "a").batch_at(2))


def test_mixed_resume_from_positions() -> None:
    def make() -> MixedSources:
        return MixedSources({"big": single(60, "b"), "small": single(12, "s")}, "temperature", 2.0, seed=5)

    full = make()
    full.set_epoch(2)
    expected = [{k: ids(v) for k, v in step.items()} for step in full]
    resumed = make()
    resumed.load_state_dict({"epoch": 2, "start_batch": 7})
    assert [{k: ids(v) for k, v in step.items()} for step in resumed] == expected[7:]


def test_a_temperature_at_or_below_zero_is_a_one_line_error() -> None:
    one_line_error(lambda: MixedSources({"a": single(8, "a")}, "temperature", 0.0), "temperature must be > 0")
    one_line_error(lambda: MixedSources({"a": single(8, "a")}, "temperature", -1.0), "temperature must be > 0")
    one_line_error(lambda: MixedSources({"a": single(8, "a")}, "annealed"), "proportional, temperature or round_robin")


def test_an_empty_source_is_a_one_line_error() -> None:
    one_line_error(lambda: SingleSource([], list, 4, 0), "no training examples")


def test_shards_take_as_many_batches_each_and_cover_the_epoch() -> None:
    """5 batches over 2 processes: 3 each (the last process's third is the epoch's first again), so no process takes
    a step (a gradient all-reduce) the other never joins."""
    whole = [ids(b) for b in single(20, "a")]
    parts = []
    for rank in (0, 1):
        source = single(20, "a")
        [ids(b) for b in source]  # batches cached before sharding are not reused after it
        source.shard(rank, 2)
        parts.append([ids(b) for b in source])
        assert source.num_batches == len(source) == 3
    assert parts[0] == whole[0::2] and parts[1] == [*whole[1::2], whole[0]]
