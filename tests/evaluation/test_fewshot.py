"""Few-shot episode evaluation: nearest-prototype accuracy per episode, its 95% interval, paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transferkit.core.errors import UserError
from transferkit.data.episodes import EpisodeShape, sample_episodes
from transferkit.evaluation import fewshot
from transferkit.evaluation.fewshot import episode_accuracies, fewshot_accuracy, mean_interval, paired_difference


def brute_force(features: np.ndarray, episodes: np.ndarray, shots: int) -> np.ndarray:
    """One episode, one query at a time, distances written out."""
    result = []
    for episode in episodes:
        prototypes = [features[members[:shots]].mean(axis=0) for members in episode]
        hits = [int(np.argmin([((features[row] - c) ** 2).sum() for c in prototypes]) == label)
                for label, members in enumerate(episode) for row in members[shots:]]
        result.append(np.mean(hits))
    return np.asarray(result)


def test_vectorised_accuracies_equal_the_written_out_rule() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 25)
    features = rng.normal(size=(labels.size, 6)) + np.eye(8, 6)[labels] * 1.5
    episodes = sample_episodes(labels, EpisodeShape(ways=5, shots=3, queries=4), count=fewshot.CHUNK_EPISODES + 37,
                               seed=0)
    expected = brute_force(features, episodes, 3)
    assert np.allclose(episode_accuracies(features, episodes, 3), expected)
    assert 0.2 < expected.mean() < 0.95  # neither trivial nor hopeless, so the comparison means something


def test_separated_classes_score_one_and_swapped_supports_score_zero() -> None:
    features = np.repeat(np.arange(4.0) * 10, 6)[:, None]
    labels = np.repeat(np.arange(4), 6)
    episodes = sample_episodes(labels, EpisodeShape(ways=3, shots=2, queries=4), count=10, seed=1)
    assert (episode_accuracies(features, episodes, 2) == 1.0).all()
    swapped = episodes.copy()
    swapped[:, :, :2] = np.roll(episodes[:, :, :2], 1, axis=1)  # class n's support is now class n-1's
    assert (episode_accuracies(features, swapped, 2) == 0.0).all()


def test_interval_is_the_normal_approximation_over_episodes() -> None:
    values = np.array([0.5, 0.7, 0.9, 0.6, 0.8])
    score = mean_interval(values)
    assert score.mean == pytest.approx(0.7)
    assert score.half_width == pytest.approx(1.959964 * values.std(ddof=1) / math.sqrt(5), rel=1e-5)
    assert score.interval == pytest.approx((0.7 - score.half_width, 0.7 + score.half_width))
    assert score.describe() == f"70.00 ± {100 * score.half_width:.2f}"


def test_paired_difference_is_per_episode() -> None:
    a, b = np.array([0.8, 0.6, 0.9, 0.7]), np.array([0.7, 0.6, 0.7, 0.6])
    difference = paired_difference(a, b)
    assert difference.mean == pytest.approx(0.1)
    assert difference.half_width < mean_interval(a).half_width  # pairing removes the episodes' shared difficulty
    with pytest.raises(UserError, match="same episodes"):
        paired_difference(a, b[:3])


def test_fewshot_accuracy_summarises_the_episodes() -> None:
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(6), 20)
    features = rng.normal(size=(labels.size, 4)) + 2 * np.eye(6, 4)[labels]
    episodes = sample_episodes(labels, EpisodeShape(5, 5, 5), count=100, seed=0)
    score = fewshot_accuracy(features, episodes, 5)
    assert score.episodes == 100
    assert score.mean == pytest.approx(episode_accuracies(features, episodes, 5).mean())


@pytest.mark.parametrize(("features", "episodes", "shots", "match"), [
    (np.zeros(10), np.zeros((1, 2, 3), dtype=int), 1, "features"),
    (np.zeros((10, 2)), np.zeros((2, 3), dtype=int), 1, "episodes must be"),
    (np.zeros((10, 2)), np.zeros((1, 2, 3), dtype=int), 3, "K < K \\+ Q"),
    (np.zeros((10, 2)), np.full((1, 2, 3), 10), 1, "row indices"),
])
def test_bad_inputs_are_refused(features, episodes, shots, match) -> None:
    with pytest.raises(UserError, match=match):
        episode_accuracies(features, episodes, shots)
