"""N-way K-shot episode evaluation on fixed features: nearest-prototype accuracy with a 95% interval.

The meta-learning protocol (Vinyals et al. 2016; Snell et al. 2017; Chen et al. 2019, "A Closer Look at
Few-shot Classification"): for each of ``E`` episodes of ``N`` classes with ``K`` support and ``Q`` query
examples per class, classify every query by its nearest class prototype (the mean of the class's
support features, squared Euclidean distance)::

    c_n   = (1/K) Σ_{j<K} z_{n,j}              ŷ(z) = argmin_n ‖z - c_n‖² = argmax_n (2 c_n·z - ‖c_n‖²)
    acc_e = (1/(N·Q)) Σ_{n, j≥K} [ŷ(z_{n,j}) = n]

and report ``mean_e acc_e ± 1.96 · s / √E`` (``s`` the sample standard deviation of the per-episode
accuracies): the normal-approximation 95% interval the meta-learning literature reports (600 episodes
is the usual count).  Two encoders compared on the *same* episodes give a paired difference per
episode, whose interval is narrower than either accuracy's.

Pure functions over numpy arrays, like the other scores here.  The episodes themselves (row indices,
shape ``(E, N, K + Q)``, support first) come from ``transferkit.data.episodes.sample_episodes``, the one
sampler that meta-training uses too:

>>> features = np.array([[0.0], [0.2], [0.1], [5.0], [5.2], [5.1]])      # two classes, three rows each
>>> episodes = np.array([[[0, 1, 2], [3, 4, 5]]])                        # one 2-way 2-shot episode, Q = 1
>>> episode_accuracies(features, episodes, shots=2)
array([1.])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from transferkit.core.errors import UserError
from transferkit.evaluation.student_t import normal_quantile

CHUNK_EPISODES = 64
"""Episodes scored per vectorised chunk (bounds the (chunk, N, K + Q, d) gather)."""


@dataclass(frozen=True)
class EpisodeScore:
    """Mean per-episode accuracy (or accuracy difference) over ``episodes`` episodes with its 95% interval."""

    mean: float
    half_width: float
    std: float
    episodes: int

    @property
    def interval(self) -> tuple[float, float]:
        return self.mean - self.half_width, self.mean + self.half_width

    def describe(self, scale: float = 100.0, signed: bool = False) -> str:
        """``"61.23 ± 0.79"`` (percent by default)."""
        return f"{scale * self.mean:{'+' if signed else ''}.2f} ± {scale * self.half_width:.2f}"


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> EpisodeScore:
    """Mean of per-episode values and the normal-approximation interval ``z_{(1+c)/2} · s / √E`` (ddof = 1)."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise UserError("no episodes to summarise")
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    half = normal_quantile(0.5 + confidence / 2) * std / math.sqrt(array.size)
    return EpisodeScore(float(array.mean()), half, std, int(array.size))


def _check(features: np.ndarray, episodes: np.ndarray, shots: int) -> None:
    if features.ndim != 2:
        raise UserError(f"few-shot evaluation takes (n, dim) features, got shape {features.shape}")
    if episodes.ndim != 3 or not 1 <= shots < episodes.shape[2]:
        raise UserError(f"episodes must be (E, N, K + Q) row indices with 1 <= K < K + Q, got shape {episodes.shape} "
                        f"and K = {shots}")
    if episodes.size and (episodes.min() < 0 or episodes.max() >= features.shape[0]):
        raise UserError(f"episode row indices must lie in 0..{features.shape[0] - 1}")


def episode_accuracies(features: np.ndarray, episodes: np.ndarray, shots: int) -> np.ndarray:
    """(E,) nearest-prototype query accuracy of each episode; ``episodes`` (E, N, K + Q) rows, support first."""
    features, episodes = np.asarray(features), np.asarray(episodes, dtype=np.int64)
    _check(features, episodes, shots)
    ways = episodes.shape[1]
    result = []
    for start in range(0, episodes.shape[0], CHUNK_EPISODES):
        rows = features[episodes[start:start + CHUNK_EPISODES]].astype(np.float64)  # (e, N, K + Q, d)
        prototypes = rows[:, :, :shots].mean(axis=2)  # (e, N, d)
        queries = rows[:, :, shots:]  # (e, N, Q, d)
        # argmin_n ‖z - c_n‖² = argmax_n (2 c_n·z - ‖c_n‖²): ‖z‖² is the same for every class
        scores = 2 * np.einsum("eiqd,end->eiqn", queries, prototypes) - (prototypes ** 2).sum(-1)[:, None, None, :]
        correct = scores.argmax(axis=-1) == np.arange(ways)[None, :, None]  # (e, N, Q)
        result.append(correct.mean(axis=(1, 2)))
    return np.concatenate(result)


def fewshot_accuracy(features: np.ndarray, episodes: np.ndarray, shots: int) -> EpisodeScore:
    """Mean nearest-prototype accuracy over ``episodes`` with its 95% interval (module docstring)."""
    return mean_interval(episode_accuracies(features, episodes, shots))


def paired_difference(accuracies_a: np.ndarray, accuracies_b: np.ndarray) -> EpisodeScore:
    """Mean of ``a_e - b_e`` over the same episodes, with its 95% interval."""
    a, b = np.asarray(accuracies_a, dtype=np.float64), np.asarray(accuracies_b, dtype=np.float64)
    if a.shape != b.shape:
        raise UserError(f"a paired difference needs the same episodes: {a.shape} vs {b.shape} accuracies")
    return mean_interval(a - b)
