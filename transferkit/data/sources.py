"""Batch sources: what the Trainer iterates over.  Three shapes cover every method on the roadmap.

* :class:`SingleSource`: one dataset, length-grouped, reshuffled every epoch (plain fine-tuning).
* :class:`ZippedSources`: several named datasets stepped together, ``{"source": batch,
  "target": batch}`` per step; an epoch is one pass over the lead (or the longest), the others are cycled
  (Lightning's ``CombinedLoader(..., "max_size_cycle")``): domain adaptation, consistency losses.
* :class:`MixedSources`: one dataset per task, one task per step, ``{task: batch}``, the task
  drawn with probability ``p_i ∝ n_i^(1/T)`` (``temperature``; ``proportional`` is T = 1) or in
  turn (``round_robin``), as jiant's samplers do: multi-task learning.

Every batch is a pure function of ``(seed, epoch, position)``: the k-th batch a source ever
yields is batch ``k mod n`` of its own epoch ``k div n``.  Resuming therefore needs only the
positions (``state_dict``), which the Trainer saves in every checkpoint, and a resumed run
sees exactly the batches an uninterrupted one would.

>>> source = SingleSource([{"input_ids": [1, 2]}] * 10, collator=list, batch_size=4, seed=0)
>>> source.num_batches, [len(batch) for batch in source]
(3, [4, 4, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol

import numpy as np

from transferkit.core.errors import UserError
from transferkit.data.collate import LengthGroupedBatchSampler

Sampling = Literal["proportional", "temperature", "round_robin"]


class BatchSource(Protocol):
    """What the Trainer iterates: ``set_epoch``, ``start_batch`` (skip on resume), ``num_batches`` per epoch,
    ``shard`` (processes), ``state_dict``/``load_state_dict`` (positions)."""

    start_batch: int
    num_batches: int

    def set_epoch(self, epoch: int) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...
    def shard(self, rank: int, world: int) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EpochPosition:
    """The resumable position every single-stream batch source keeps: epoch, batches done in it, and this
    process's shard (``rank`` of ``world``).  A subclass defines ``num_batches`` (a full epoch, per process)."""

    def _start(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world
        self.epoch, self.start_batch = 0, 0

    def shard(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world
        self._cache = None  # a subclass's cached batches were the previous shard's

    def per_process(self, total: int) -> int:
        """Batches each process takes of an epoch of ``total``: the same count for all (rounded up), since a process
        with one batch more would wait forever in that step's gradient all-reduce."""
        return -(-total // self.world)

    def share(self, batches: Sequence[Any]) -> list[Any]:
        """This process's batches of an epoch: ``rank, rank + world, ...`` of ``batches`` padded to
        ``world · per_process`` by cycling from the first (as torch's ``DistributedSampler`` pads)."""
        padded = self.per_process(len(batches)) * self.world
        return [batches[i % len(batches)] for i in range(self.rank, padded, self.world)]

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.start_batch = int(epoch), 0

    def __len__(self) -> int:
        """Batches left in this epoch."""
        return max(self.num_batches - self.start_batch, 0)  # type: ignore[attr-defined]  # the subclass's property

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "start_batch": self.start_batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.start_batch = int(state.get("epoch", 0)), int(state.get("start_batch", 0))


class SingleSource(EpochPosition):
    """One dataset's batches: length-grouped, shuffled per epoch with ``seed`` (see ``LengthGroupedBatchSampler``).

    ``rank``/``world`` shard the batches across processes (``accelerate launch``): process r
    takes batches r, r + world, ... (every process as many: see ``share``); positions and lengths are then per process.
    """

    def __init__(self, features: Sequence[dict[str, Any]], collator: Callable, batch_size: int, seed: int,
                 group_by_length: bool = True, shuffle: bool = True, rank: int = 0, world: int = 1) -> None:
        if not len(features):
            raise UserError("no training examples left to train on (check data.train, data.budget and the caps)")
        self.features, self.collator = features, collator
        lengths = [len(feature.get("input_ids", (0,))) for feature in features]
        self.sampler = LengthGroupedBatchSampler(lengths, batch_size, seed, shuffle=shuffle,
                                                 group_by_length=group_by_length)
        self._start(rank, world)
        self._cache: tuple[int, list[np.ndarray]] | None = None

    @classmethod
    def from_config(cls, features: Sequence[dict[str, Any]], collator: Callable, config: Any,
                    seed: int | None = None) -> SingleSource:
        """The usual source of a training config (``batch_size``, ``group_by_length``), seeded by ``seed`` or else
        the config's ``seed`` (a strategy with several sources offsets it per source)."""
        return cls(features, collator, config.batch_size, config.seed if seed is None else seed,
                   group_by_length=config.group_by_length)

    @property
    def num_batches(self) -> int:
        """Batches of a full epoch (for this process): the same every epoch."""
        return self.per_process(self.sampler.num_batches)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self.share(self.sampler.epoch_batches(epoch)))
        return self._cache[1]

    def batch_at(self, index: int) -> Any:
        """The ``index``-th batch this source ever yields, counting across epochs (cycling)."""
        per_epoch = self.num_batches
        batch = self._epoch_batches(index // per_epoch)[index % per_epoch]
        return self.collator([self.features[i] for i in batch])

    def __iter__(self) -> Iterator[Any]:
        for batch in self._epoch_batches(self.epoch)[self.start_batch:]:
            yield self.collator([self.features[i] for i in batch])


class _Named:
    """Shared plumbing of the multi-dataset sources: named single sources, epoch, position, sharding."""

    def __init__(self, sources: dict[str, SingleSource]) -> None:
        if not sources:
            raise ValueError("a multi-dataset batch source needs at least one named source")
        self.sources = dict(sources)
        self.epoch, self.start_batch = 0, 0

    def shard(self, rank: int, world: int) -> None:
        for source in self.sources.values():
            source.shard(rank, world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.start_batch = int(epoch), 0

    def __len__(self) -> int:
        return max(self.num_batches - self.start_batch, 0)

    @property
    def num_batches(self) -> int:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "start_batch": self.start_batch, "sources": sorted(self.sources)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        names = state.get("sources")
        if names is not None and list(names) != sorted(self.sources):
            raise UserError(f"checkpoint was written with batch sources {names}, this run has {sorted(self.sources)}: "
                            "resume with the same data.sources")
        self.epoch, self.start_batch = int(state.get("epoch", 0)), int(state.get("start_batch", 0))


class ZippedSources(_Named):
    """Step several named datasets together: each step yields ``{name: batch}`` for every name.

    An epoch is one pass over ``lead`` (domain adaptation: the labelled source, however large the
    unlabelled target corpus), or by default over the source with the most batches; the others are
    cycled, each continuing where it left off (its k-th batch overall is ``batch_at(k)``).
    """

    def __init__(self, sources: dict[str, SingleSource], lead: str | None = None) -> None:
        super().__init__(sources)
        if lead is not None and lead not in self.sources:
            raise ValueError(f"lead source {lead!r} is not one of {sorted(self.sources)}")
        self.lead = lead

    @property
    def num_batches(self) -> int:
        if self.lead is not None:
            return self.sources[self.lead].num_batches
        return max(source.num_batches for source in self.sources.values())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        length = self.num_batches
        for position in range(self.start_batch, length):
            step = self.epoch * length + position
            yield {name: source.batch_at(step) for name, source in self.sources.items()}


class MixedSources(_Named):
    """One task per step, ``{task: batch}``: temperature sampling ``p_i ∝ n_i^(1/T)`` or round robin.

    An epoch has as many steps as all sources have batches together; which task each step
    takes is drawn from ``default_rng([seed, epoch])``, and each task's batches continue
    across epochs (cycling), so small tasks are revisited when ``T`` flattens the mixture.
    ``temperature`` is ignored by ``proportional`` (T = 1) and ``round_robin``.
    """

    def __init__(self, sources: dict[str, SingleSource], sampling: Sampling = "proportional",
                 temperature: float = 1.0, seed: int = 0) -> None:
        super().__init__(sources)
        if sampling not in ("proportional", "temperature", "round_robin"):
            raise UserError(f"task sampling must be proportional, temperature or round_robin, got {sampling!r}")
        if not temperature > 0:
            raise UserError(f"the task-mixing temperature must be > 0, got {temperature}")
        self.sampling, self.temperature, self.seed = sampling, float(temperature if sampling == "temperature" else 1.0), seed
        self.names = list(self.sources)

    def probabilities(self) -> np.ndarray:
        """``p_i = n_i^(1/T) / Σ_j n_j^(1/T)`` over the sources' batch counts."""
        sizes = np.array([self.sources[name].num_batches for name in self.names], dtype=np.float64)
        weights = sizes ** (1.0 / self.temperature)
        return weights / weights.sum()

    @property
    def num_batches(self) -> int:
        return sum(source.num_batches for source in self.sources.values())

    def schedule(self, epoch: int) -> np.ndarray:
        """The task index of every step of ``epoch``."""
        length = self.num_batches
        if self.sampling == "round_robin":
            return (np.arange(length) + epoch * length) % len(self.names)
        rng = np.random.default_rng([self.seed, epoch])
        return rng.choice(len(self.names), size=length, p=self.probabilities())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        before = np.zeros(len(self.names), dtype=np.int64)  # batches each task used in earlier epochs
        for epoch in range(self.epoch):
            before += np.bincount(self.schedule(epoch), minlength=len(self.names))
        tasks = self.schedule(self.epoch)
        occurrence = np.zeros(len(tasks), dtype=np.int64)  # how often each step's task came before it this epoch
        for task in range(len(self.names)):
            where = tasks == task
            occurrence[where] = np.arange(int(where.sum()))
        for position in range(self.start_batch, len(tasks)):
            task = int(tasks[position])
            name = self.names[task]
            yield {name: self.sources[name].batch_at(int(before[task] + occurrence[position]))}
