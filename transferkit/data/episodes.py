"""Episodes: N-way K-shot tasks sampled from labelled rows, for meta-training and few-shot evaluation.

An episode (Vinyals et al. 2016, "Matching Networks"; Snell et al. 2017, "Prototypical Networks")
draws ``N`` classes, then ``K`` support and ``Q`` query examples of each, without replacement::

    classes  c_1 .. c_N   ~ uniform, without replacement, among the classes with >= K + Q rows
    support  S_n = K rows of c_n,   query  Q_n = Q other rows of c_n       (n = 1 .. N)

and relabels the classes ``0 .. N-1`` in the order drawn (episode-local labels), so a model
learns to classify *by the support set*, not to memorise the dataset's label ids.

:func:`sample_episodes` gives the row indices of a fixed list of episodes (the same episodes for
every encoder under comparison); :class:`EpisodeSource` is a batch source for the Trainer that
yields one episode per step from one dataset or from several (an episode's dataset is drawn
uniformly, as Meta-Dataset does: Triantafillou et al. 2020).  Episode ``k`` is a pure function of
``(seed, k)`` (``np.random.default_rng([seed, k])``), so a resumed run sees the same episodes.

>>> labels = [0] * 6 + [1] * 6 + [2] * 6
>>> sample_episodes(labels, EpisodeShape(ways=2, shots=2, queries=3), count=4, seed=0).shape
(4, 2, 5)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferkit.core.errors import UserError
from transferkit.data.sources import EpochPosition

SUPPORT, QUERY = 0, 1
"""Values of a collated episode's ``episode_role`` per row."""


@dataclass(frozen=True)
class EpisodeShape:
    """``ways`` (N) classes per episode, ``shots`` (K) support and ``queries`` (Q) query rows per class."""

    ways: int
    shots: int
    queries: int

    @property
    def per_class(self) -> int:
        return self.shots + self.queries

    @property
    def size(self) -> int:
        """Rows in one episode: N·(K + Q)."""
        return self.ways * self.per_class

    def describe(self) -> str:
        return f"{self.ways}-way {self.shots}-shot, {self.queries} queries per class"

    def check(self) -> None:
        for name, value, low in (("ways (N)", self.ways, 2), ("shots (K)", self.shots, 1), ("queries (Q)", self.queries, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise UserError(f"episode {name} must be an integer >= {low}, got {value!r}")


def class_pools(labels: Sequence[int] | np.ndarray, minimum: int = 1) -> list[np.ndarray]:
    """Row indices of every class with at least ``minimum`` rows, classes in ascending label order."""
    array = np.asarray(labels, dtype=np.int64).reshape(-1)
    order = np.argsort(array, kind="stable")
    _, starts, counts = np.unique(array[order], return_index=True, return_counts=True)
    return [order[start:start + count] for start, count in zip(starts, counts, strict=True) if count >= minimum]


def eligible_pools(labels: Sequence[int] | np.ndarray, shape: EpisodeShape, where: str = "the data") -> list[np.ndarray]:
    """The pools of the classes with >= K + Q rows; a UserError naming the numbers when fewer than N have that many."""
    shape.check()
    pools = class_pools(labels, shape.per_class)
    if len(pools) < shape.ways:
        total = len(class_pools(labels))
        raise UserError(f"{where}: a {shape.describe()} episode needs {shape.ways} classes with at least "
                        f"{shape.per_class} examples (K + Q = {shape.shots} + {shape.queries}); {len(pools)} of its "
                        f"{total} classes have that many: lower the ways, shots or queries")
    return pools


def draw_episode(rng: np.random.Generator, pools: Sequence[np.ndarray], shape: EpisodeShape) -> np.ndarray:
    """(N, K + Q) row indices: N pools drawn without replacement, then K + Q rows of each (support first)."""
    chosen = rng.choice(len(pools), size=shape.ways, replace=False)
    return np.stack([rng.choice(pools[c], size=shape.per_class, replace=False) for c in chosen])


def sample_episodes(labels: Sequence[int] | np.ndarray, shape: EpisodeShape, count: int, seed: int) -> np.ndarray:
    """(count, N, K + Q) row indices of ``count`` episodes; episode ``e`` uses ``default_rng([seed, e])``.

    Row ``[e, n, :K]`` is the support of the episode's class ``n``, ``[e, n, K:]`` its queries.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise UserError(f"the number of episodes must be an integer >= 1, got {count!r}")
    pools = eligible_pools(labels, shape)
    return np.stack([draw_episode(np.random.default_rng([seed, e]), pools, shape) for e in range(count)])


class EpisodeSource(EpochPosition):
    """One episode per step from one or several labelled datasets (a batch source: see ``data.sources``).

    Each step yields one collated batch of N·(K + Q) rows: the rows of ``draw_episode`` in class
    order, ``labels`` replaced by the episode-local class ``0 .. N-1`` and ``episode_role`` =
    :data:`SUPPORT` or :data:`QUERY`.  ``episodes_per_epoch`` bounds an epoch.  Process ``rank``
    of ``world`` takes episodes ``rank, rank + world, ...`` of each epoch.
    """

    def __init__(self, datasets: dict[str, Sequence[dict[str, Any]]], collator: Callable, shape: EpisodeShape,
                 episodes_per_epoch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if not datasets:
            raise ValueError("an episode source needs at least one labelled dataset")
        if isinstance(episodes_per_epoch, bool) or not isinstance(episodes_per_epoch, (int, np.integer)) \
                or episodes_per_epoch < 1:
            raise UserError(f"episodes per epoch must be an integer >= 1, got {episodes_per_epoch!r}")
        self.datasets = {name: list(rows) for name, rows in datasets.items()}
        self.names = list(self.datasets)
        self.pools = {name: eligible_pools([row["labels"] for row in rows], shape, name)
                      for name, rows in self.datasets.items()}
        self.collator, self.shape, self.per_epoch, self.seed = collator, shape, int(episodes_per_epoch), int(seed)
        self._start(rank, world)

    @property
    def num_batches(self) -> int:
        """Episodes of a full epoch (for this process)."""
        return self.per_process(self.per_epoch)  # the last processes may run into the next epoch's first episodes

    def episode(self, index: int) -> tuple[str, np.ndarray]:
        """The ``index``-th episode overall (all processes, all epochs): (dataset name, (N, K + Q) row indices)."""
        rng = np.random.default_rng([self.seed, index])
        name = self.names[int(rng.integers(len(self.names)))] if len(self.names) > 1 else self.names[0]
        return name, draw_episode(rng, self.pools[name], self.shape)

    def batch_at(self, index: int) -> Any:
        """The collated ``index``-th episode."""
        name, rows = self.episode(index)
        dataset, shots = self.datasets[name], self.shape.shots
        batch = [{**dataset[int(row)], "labels": label, "episode_role": SUPPORT if position < shots else QUERY}
                 for label, members in enumerate(rows) for position, row in enumerate(members)]
        return self.collator(batch)

    def __iter__(self) -> Iterator[Any]:
        for position in range(self.start_batch, self.num_batches):
            yield self.batch_at(self.epoch * self.per_epoch + self.rank + position * self.world)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "datasets": self.names}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        names = state.get("datasets")
        if names is not None and list(names) != self.names:
            raise UserError(f"checkpoint was written with episode datasets {names}, this run has {self.names}: "
                            "resume with the same data.sources")
        super().load_state_dict(state)
