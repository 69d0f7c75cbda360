"""Episodes: N classes x (K support + Q query) rows, seeded, resumable; errors that name the numbers."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit.core.errors import UserError
from transferkit.data.episodes import QUERY, SUPPORT, EpisodeShape, EpisodeSource, class_pools, sample_episodes

LABELS = np.repeat(np.arange(6), [12, 9, 8, 20, 3, 10])  # class 4 is too small for K + Q = 5
SHAPE = EpisodeShape(ways=3, shots=2, queries=3)


def rows(labels: np.ndarray, offset: int = 0) -> list[dict]:
    return [{"input_ids": [offset + i], "labels": int(y)} for i, y in enumerate(labels)]


def collate(batch: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.asarray([row[key] for row in batch]) for key in batch[0]}


def test_episodes_draw_distinct_classes_and_disjoint_rows_of_each() -> None:
    episodes = sample_episodes(LABELS, SHAPE, count=50, seed=0)
    assert episodes.shape == (50, 3, 5)
    for episode in episodes:
        classes = LABELS[episode]  # (N, K + Q) original labels
        assert (classes == classes[:, :1]).all()  # each row of the episode is one class
        assert len(set(classes[:, 0])) == 3  # N different classes
        assert len(set(episode.ravel())) == episode.size  # no example twice: support and query disjoint
    assert 4 not in set(LABELS[episodes].ravel())  # a class with fewer than K + Q rows is never drawn
    assert set(LABELS[episodes].ravel()) == {0, 1, 2, 3, 5}  # every eligible class is (over 50 episodes)


def test_episodes_are_a_function_of_the_seed() -> None:
    first = sample_episodes(LABELS, SHAPE, count=20, seed=7)
    assert np.array_equal(first, sample_episodes(LABELS, SHAPE, count=20, seed=7))
    assert np.array_equal(first[:5], sample_episodes(LABELS, SHAPE, count=5, seed=7))  # a prefix, not a reshuffle
    assert not np.array_equal(first, sample_episodes(LABELS, SHAPE, count=20, seed=8))


def test_more_ways_than_classes_with_enough_examples_names_the_numbers() -> None:
    with pytest.raises(UserError, match=r"6-way 2-shot.*6 classes with at least 5 examples.*5 of its 6 classes"):
        sample_episodes(LABELS, EpisodeShape(ways=6, shots=2, queries=3), count=1, seed=0)
    with pytest.raises(UserError, match="at least 21 examples"):  # K + Q larger than every class
        sample_episodes(LABELS, EpisodeShape(ways=2, shots=16, queries=5), count=1, seed=0)


@pytest.mark.parametrize(("shape", "word"), [(EpisodeShape(1, 2, 3), "ways"), (EpisodeShape(3, 0, 3), "shots"),
                                             (EpisodeShape(3, 2, 0), "queries")])
def test_degenerate_shapes_are_refused(shape: EpisodeShape, word: str) -> None:
    with pytest.raises(UserError, match=word):
        sample_episodes(LABELS, shape, count=1, seed=0)


def test_class_pools_group_indices_by_label() -> None:
    pools = class_pools([2, 0, 2, 1, 2], minimum=2)
    assert [pool.tolist() for pool in pools] == [[0, 2, 4]]


def test_a_batch_is_one_episode_with_local_labels_and_roles() -> None:
    source = EpisodeSource({"train": rows(LABELS)}, collate, SHAPE, episodes_per_epoch=4, seed=0)
    batch = next(iter(source))
    assert batch["labels"].tolist() == [0] * 5 + [1] * 5 + [2] * 5  # episode-local, class-major
    assert batch["episode_role"].tolist() == ([SUPPORT] * 2 + [QUERY] * 3) * 3
    original = LABELS[batch["input_ids"].ravel()]
    for local in range(3):  # every local class is one original class, different for each local class
        assert len(set(original[batch["labels"] == local])) == 1
    assert len(set(original)) == 3
    assert source.num_batches == len(list(source)) == 4


def test_epochs_differ_and_a_resumed_source_yields_the_remaining_episodes() -> None:
    def make() -> EpisodeSource:
        return EpisodeSource({"train": rows(LABELS)}, collate, SHAPE, episodes_per_epoch=5, seed=3)

    source = make()
    source.set_epoch(1)
    full = [batch["input_ids"].tolist() for batch in source]
    source.set_epoch(0)
    assert full != [batch["input_ids"].tolist() for batch in source]
    resumed = make()
    resumed.load_state_dict({"epoch": 1, "start_batch": 2, "datasets": ["train"]})
    assert [batch["input_ids"].tolist() for batch in resumed] == full[2:]
    with pytest.raises(UserError, match="episode datasets"):
        resumed.load_state_dict({"epoch": 0, "start_batch": 0, "datasets": ["train", "other"]})


def test_several_datasets_each_give_whole_episodes() -> None:
    other = np.repeat(np.arange(4), 6)
    source = EpisodeSource({"train": rows(LABELS), "extra": rows(other, offset=1000)}, collate, SHAPE,
                           episodes_per_epoch=40, seed=0)
    origins = []
    for batch in source:
        ids = batch["input_ids"].ravel()
        assert (ids < 1000).all() or (ids >= 1000).all()  # never a mix of datasets within an episode
        origins.append(bool(ids[0] >= 1000))
    assert 10 < sum(origins) < 30  # each dataset about half the episodes


def test_shards_split_the_episodes_of_an_epoch() -> None:
    whole = EpisodeSource({"train": rows(LABELS)}, collate, SHAPE, episodes_per_epoch=5, seed=1)
    parts = []
    for rank in (0, 1):
        shard = EpisodeSource({"train": rows(LABELS)}, collate, SHAPE, episodes_per_epoch=5, seed=1)
        shard.shard(rank, 2)
        parts.append([batch["input_ids"].tolist() for batch in shard])
    expected = [batch["input_ids"].tolist() for batch in whole]
    whole.set_epoch(1)
    next_epoch = [batch["input_ids"].tolist() for batch in whole]
    assert len(parts[0]) == len(parts[1]) == 3  # as many steps in every process, or one would wait on the other
    assert parts[0] == expected[0::2] and parts[1] == [*expected[1::2], next_epoch[0]]


def test_bad_episode_counts_and_too_small_datasets_are_refused() -> None:
    with pytest.raises(UserError, match="episodes per epoch"):
        EpisodeSource({"train": rows(LABELS)}, collate, SHAPE, episodes_per_epoch=0, seed=0)
    with pytest.raises(UserError, match="tiny: a 3-way"):
        EpisodeSource({"train": rows(LABELS), "tiny": rows(np.repeat([0, 1], 5))}, collate, SHAPE, 3, seed=0)
