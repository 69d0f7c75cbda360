"""Text pairs for contrastive training: a seeded sampler whose pair count grows linearly with the data.

SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts") fine-tunes a sentence
encoder on pairs of labelled examples, similar (same class) or not.  Enumerating every pair is
quadratic in the number of examples ``n`` (SetFit's default ``sampling_strategy="oversampling"``
builds all ``n(n+1)/2`` of them first); here, as in the paper's ``R`` iterations, each of ``R``
rounds gives every example exactly one positive and one negative partner::

    for r in 1..R, for every example i:
        (i, j⁺, s(i, j⁺))   j⁺ ~ uniform over {j ≠ i : Y_j ∩ Y_i ≠ ∅}      (a positive partner)
        (i, j⁻, 0)          j⁻ ~ uniform over {j : Y_j ∩ Y_i = ∅}          (a negative partner)

    s(i, j) = |Y_i ∩ Y_j| / |Y_i ∪ Y_j|        (Jaccard similarity of the label sets; 1 when both are empty)

so an epoch holds ``2·R·n`` pairs, half of them positive, and costs ``O(R·n)`` to draw (plus one
``(n, labels)`` mask product per distinct label set).  With few examples there are fewer distinct pairs
than that: ``P⁺`` unordered positive and ``P⁻ = n(n−1)/2 − P⁺`` negative ones.  Rounds beyond
``⌈max(P⁺, P⁻) / n⌉`` would only repeat pairs within the epoch, so the sampler runs
``min(R, ⌈max(P⁺, P⁻) / n⌉)`` rounds (:func:`pair_rounds`): at most the ``2·max(P⁺, P⁻)`` pairs of
SetFit's enumerate-then-oversample scheme, and never more than ``2·R·n``.  For single-label data ``Y_i = {y_i}``, so
``s`` is 1 for the same class and 0 otherwise: exactly SetFit's scheme.  For multi-label data a
positive partner shares at least one label and its target is the Jaccard similarity, so ``{a, b}``
and ``{a}`` are pulled together half as hard as two ``{a, b}`` (SetFit marks any overlap 1.0); an
example without labels is paired positively only with other examples without labels.

:class:`PairSource` is a batch source for the Trainer: per epoch it draws the pairs from
``default_rng([seed, epoch, 1])``, groups them by length (``LengthGroupedBatchSampler``), and yields
the two sides collated as *one* batch of ``2B`` rows (rows ``[0, B)`` the anchors, ``[B, 2B)`` their
partners, so an encoder embeds both in one forward pass) plus a float ``similarity`` target ``(B,)``.
Every batch is a pure function of ``(seed, epoch, position)``, so a resumed run sees the same pairs.

>>> pairs = sample_pairs(label_matrix([0, 0, 1, 1]), num_iterations=3, rng=np.random.default_rng(0))
>>> len(pairs.left), float(pairs.similarity.mean())
(24, 0.5)
>>> pair_rounds(label_matrix([0] * 8 + [1] * 8), num_iterations=20)  # P⁺ = 56, P⁻ = 64: 4 rounds, 128 pairs
4
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from transferkit.core.errors import UserError
from transferkit.data.collate import LengthGroupedBatchSampler
from transferkit.data.sources import EpochPosition

PAIR_STREAM = 1
"""Third word of the pairs' seed ``[seed, epoch, 1]``, so they do not reuse the batch order's random stream."""


@dataclass(frozen=True)
class Pairs:
    """``left[k]`` and ``right[k]`` are row indices, ``similarity[k]`` the target of pair ``k`` (float32)."""

    left: np.ndarray
    right: np.ndarray
    similarity: np.ndarray


def label_matrix(labels: Sequence[Any], num_labels: int | None = None) -> np.ndarray:
    """(n, L) boolean label sets: a class id per row (single-label) or a collection of ids (multi-label)."""
    sets = [[int(label)] if np.isscalar(label) else [int(y) for y in label] for label in labels]
    width = num_labels if num_labels is not None else 1 + max((max(s) for s in sets if s), default=-1)
    matrix = np.zeros((len(sets), width), dtype=bool)
    for row, members in enumerate(sets):
        matrix[row, members] = True
    return matrix


def describe_labels(labels: np.ndarray, names: Sequence[str] = ()) -> str:
    """A label set for messages: ``class 'neg'`` (names given), ``class 3`` or ``label set {'a', 'b'}``."""
    ids = np.flatnonzero(labels).tolist()
    shown = [repr(names[i]) if i < len(names) else str(i) for i in ids]
    if len(shown) == 1:
        return f"class {shown[0]}"
    return "label set {" + ", ".join(shown) + "}"


def check_pairable(labels: np.ndarray, names: Sequence[str] = (), where: str = "data.train") -> None:
    """Fail (UserError) when some example has no positive partner (e.g. a class with one example) or no negative
    partner (one class only): ``labels`` is the (n, L) boolean matrix of :func:`label_matrix`."""
    for pattern in np.unique(labels, axis=0):
        positive, _ = _partners(labels, pattern)
        if positive.sum() < 2:  # only the example itself
            raise UserError(f"{where}: {describe_labels(pattern, names)} has a single example (no other shares its "
                            "label), so contrastive training has no positive pair for it: add examples or raise "
                            "data.budget to 2 or more")
        if positive.all():
            raise UserError(f"{where}: every example shares a label with {describe_labels(pattern, names)}, so "
                            "contrastive training has no negative pair for it: it needs examples sharing none of its "
                            "labels (at least two classes)")


def _partners(labels: np.ndarray, pattern: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positive mask (n,), Jaccard similarity (n,)) of every row against the label set ``pattern``."""
    shared = (labels & pattern).sum(axis=1)
    union = (labels | pattern).sum(axis=1)
    if not pattern.any():  # no labels: similar only to other rows without labels
        return union == 0, (union == 0).astype(np.float32)
    return shared > 0, (shared / np.maximum(union, 1)).astype(np.float32)


def distinct_pairs(labels: np.ndarray) -> tuple[int, int]:
    """``(P⁺, P⁻)``: unordered pairs of distinct rows that are positive (share a label, or both have none) / not.

    Counted over the distinct label sets (``p`` of them, ``p × p`` overlaps), not over the ``n²`` row pairs.
    """
    patterns, counts = np.unique(labels, axis=0, return_counts=True)
    overlap = (patterns.astype(np.int64) @ patterns.T.astype(np.int64)) > 0  # (p, p): the sets share a label
    np.fill_diagonal(overlap, True)  # a set pairs positively with itself, the empty set included
    counts = counts.astype(np.int64)
    same = int((counts * (counts - 1) // 2).sum())
    across = int((np.outer(counts, counts) * np.triu(overlap, 1)).sum())
    n = int(counts.sum())
    return same + across, n * (n - 1) // 2 - same - across


def pair_rounds(labels: np.ndarray, num_iterations: int) -> int:
    """Rounds an epoch runs: ``min(R, ⌈max(P⁺, P⁻) / n⌉)``, beyond which pairs only repeat (module docstring)."""
    positive, negative = distinct_pairs(labels)
    return max(1, min(int(num_iterations), -(-max(positive, negative) // labels.shape[0])))


def sample_pairs(labels: np.ndarray, num_iterations: int, rng: np.random.Generator) -> Pairs:
    """``2·num_iterations·n`` pairs: every row gets one positive and one negative partner per round (module docstring).

    ``labels`` is the (n, L) boolean matrix of :func:`label_matrix`; call :func:`check_pairable` first.
    """
    n = labels.shape[0]
    left = np.tile(np.arange(n), (num_iterations, 2))  # (R, 2n): per round, every anchor twice
    right = np.empty_like(left)
    similarity = np.zeros(left.shape, dtype=np.float32)
    patterns, inverse = np.unique(labels, axis=0, return_inverse=True)
    for group, pattern in enumerate(patterns):
        anchors = np.flatnonzero(inverse.reshape(-1) == group)  # rows with this label set
        positive, jaccard = _partners(labels, pattern)
        candidates, others = np.flatnonzero(positive), np.flatnonzero(~positive)
        # uniform over the positive candidates except the anchor: draw from len - 1 slots, skip the anchor's own
        own = np.searchsorted(candidates, anchors)  # (a,) position of each anchor among its candidates
        draw = rng.integers(0, len(candidates) - 1, size=(num_iterations, len(anchors)))
        partners = candidates[draw + (draw >= own)]  # (R, a)
        right[:, anchors] = partners
        similarity[:, anchors] = jaccard[partners]
        right[:, n + anchors] = others[rng.integers(0, len(others), size=(num_iterations, len(anchors)))]
    return Pairs(left.reshape(-1), right.reshape(-1), similarity.reshape(-1))


class PairSource(EpochPosition):
    """The Trainer's batch source of contrastive pairs (module docstring): ``2·rounds·n`` pairs an epoch, with
    ``rounds = min(R, ⌈max(P⁺, P⁻) / n⌉)``.

    Args:
        features: featurised training rows (``input_ids``, ... and ``labels``: a class id or a list of ids).
        collator: pads a list of rows into a batch (the rows' ``labels`` are left out).
        batch_size: pairs per batch (each batch encodes ``2·batch_size`` texts).
        seed: pairs and batch order of epoch ``e`` come from ``[seed, e]``.
        num_iterations: ``R``, the most rounds of partners per epoch (fewer when pairs would repeat).
        label_names: class names for error messages.
    """

    def __init__(self, features: Sequence[dict[str, Any]], collator: Callable, batch_size: int, seed: int,
                 num_iterations: int, group_by_length: bool = True, label_names: Sequence[str] = (),
                 rank: int = 0, world: int = 1) -> None:
        if not len(features):
            raise UserError("no training examples left to train on (check data.train, data.budget and the caps)")
        if isinstance(num_iterations, bool) or not isinstance(num_iterations, (int, np.integer)) or num_iterations < 1:
            raise UserError(f"strategy.num_iterations must be an integer >= 1, got {num_iterations!r}")
        self.rows = [{k: v for k, v in row.items() if k != "labels"} for row in features]
        self.labels = label_matrix([row["labels"] for row in features], len(label_names) or None)
        check_pairable(self.labels, label_names)
        self.lengths = np.array([len(row.get("input_ids", (0,))) for row in features], dtype=np.int64)
        self.collator, self.batch_size, self.seed = collator, batch_size, seed
        self.rounds, self.group_by_length = pair_rounds(self.labels, num_iterations), group_by_length
        self._start(rank, world)
        self._cache: tuple[int, Pairs, list[np.ndarray]] | None = None

    @property
    def num_pairs(self) -> int:
        """Pairs in one epoch: ``2·rounds·n``."""
        return 2 * self.rounds * len(self.rows)

    @property
    def num_batches(self) -> int:
        """Batches of a full epoch (for this process): the same every epoch."""
        return self.per_process(-(-self.num_pairs // self.batch_size))

    def epoch_pairs(self, epoch: int) -> tuple[Pairs, list[np.ndarray]]:
        """The pairs of ``epoch`` and this process's batches of pair indices."""
        if self._cache is None or self._cache[0] != epoch:
            pairs = sample_pairs(self.labels, self.rounds, np.random.default_rng([self.seed, epoch, PAIR_STREAM]))
            lengths = np.maximum(self.lengths[pairs.left], self.lengths[pairs.right])  # a batch pads to its longest side
            sampler = LengthGroupedBatchSampler(lengths, self.batch_size, self.seed, group_by_length=self.group_by_length)
            self._cache = (epoch, pairs, self.share(sampler.epoch_batches(epoch)))
        return self._cache[1], self._cache[2]

    def collate(self, pairs: Pairs, batch: np.ndarray) -> dict[str, torch.Tensor]:
        """One batch of ``2·len(batch)`` rows (anchors, then partners) and the ``similarity`` targets."""
        rows = [self.rows[i] for i in pairs.left[batch]] + [self.rows[i] for i in pairs.right[batch]]
        collated = self.collator(rows)
        collated["similarity"] = torch.from_numpy(pairs.similarity[batch].copy())
        return collated

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        pairs, batches = self.epoch_pairs(self.epoch)
        for batch in batches[self.start_batch:]:
            yield self.collate(pairs, batch)
