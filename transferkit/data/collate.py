"""Dynamic padding and length-grouped batching.

:class:`PaddingCollator` pads each batch only to its own longest sequence;
:class:`LengthGroupedBatchSampler` puts sequences of similar length together so that
padding stays small, while every epoch still sees a fresh, seeded order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from transferkit.core.contracts import IGNORE_INDEX
from transferkit.core.errors import UserError

SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids")
FLOAT_KEYS = ("features", "teacher_logits", "teacher_features")
"""Float rows: cached encoder features and a distillation teacher's outputs, pooled (dim,) or per token (len, dim)."""


class PaddingCollator:
    """Collate feature dicts into tensors, padding sequences to the longest in the batch.

    ``input_ids`` are padded with ``pad_token_id``, ``attention_mask`` and
    ``token_type_ids`` with 0; ``labels`` become an int64 tensor (per-token labels padded
    with -100), ``features`` (and a teacher's ``teacher_logits``/``teacher_features``) a float32
    (batch, dim) matrix or, per token, a zero-padded (batch, seq, dim) tensor; other scalar keys are
    stacked as they are.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, (int, np.integer)):
            raise ValueError(f"pad_token_id must be an int (set the tokenizer's pad token), got {pad_token_id!r}")
        self.pad_token_id = int(pad_token_id)
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        keys = [key for key in features[0] if not key.startswith("_")]  # "_..." = decoding metadata, not tensors
        batch: dict[str, torch.Tensor] = {}
        for key in keys:
            values = [feature[key] for feature in features]
            if key in SEQUENCE_KEYS:
                batch[key] = self._pad(values, self.pad_token_id if key == "input_ids" else 0)
            elif key == "labels" and isinstance(values[0], (list, tuple, np.ndarray)):
                batch[key] = self._pad(values, IGNORE_INDEX)  # per-token labels, ignored by the loss
            elif key == "labels":
                batch[key] = torch.as_tensor(np.asarray(values, dtype=np.int64))
            elif key in FLOAT_KEYS:
                batch[key] = self._features(values)
            else:
                batch[key] = torch.as_tensor(np.asarray(values))
        return batch

    def _width(self, lengths: list[int]) -> int:
        width = max(lengths)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        return width

    def _features(self, values: list[Any]) -> torch.Tensor:
        """Cached encoder outputs as float32: pooled (dim,) rows stack to (batch, dim); per-token
        (length_i, dim) arrays are zero-padded to (batch, longest, dim), aligned with ``input_ids``."""
        arrays = [np.asarray(v, dtype=np.float32) for v in values]
        if arrays[0].ndim == 1:
            return torch.from_numpy(np.stack(arrays))
        lengths = [len(array) for array in arrays]
        padded = np.zeros((len(arrays), self._width(lengths), arrays[0].shape[-1]), dtype=np.float32)
        for row, (array, length) in enumerate(zip(arrays, lengths, strict=True)):
            padded[row, :length] = array
        return torch.from_numpy(padded)

    def _pad(self, sequences: list[Sequence[int]], value: int) -> torch.Tensor:
        """One (batch, longest) allocation, then one slice assignment per example."""
        lengths = [len(sequence) for sequence in sequences]
        width = self._width(lengths)
        padded = np.full((len(sequences), width), value, dtype=np.int64)
        for row, (sequence, length) in enumerate(zip(sequences, lengths, strict=True)):
            padded[row, :length] = sequence
        return torch.from_numpy(padded)


class LengthGroupedBatchSampler:
    """Batches of indices, grouped by length, reshuffled every epoch (``set_epoch``).

    Each epoch draws a permutation from ``np.random.default_rng([seed, epoch])``.  With
    ``group_by_length`` the permutation is cut into megabatches of
    ``megabatch_size * batch_size`` indices, each sorted by length (longest first) and
    cut into batches; the batch order is then shuffled, with the batch holding the longest
    example moved first so an out-of-memory error shows up at once.  ``start_batch``
    skips the first batches of the epoch (exact resume).  Without ``shuffle`` the order
    is sequential.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        group_by_length: bool = True,
        megabatch_size: int = 64,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UserError(f"training.batch_size must be an integer >= 1, got {batch_size!r}")
        if megabatch_size < 1:
            raise ValueError(f"megabatch_size must be >= 1, got {megabatch_size!r}")
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.megabatch_size = int(megabatch_size)
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order; resets ``start_batch`` to 0."""
        self.epoch = int(epoch)
        self.start_batch = 0

    @property
    def num_batches(self) -> int:
        """Batches in a full epoch."""
        return -(-self.lengths.size // self.batch_size)

    def __len__(self) -> int:
        return max(self.num_batches - self.start_batch, 0)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.epoch_batches()[self.start_batch :]:
            yield batch.tolist()

    def epoch_batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """All batches of ``epoch`` (default: the current one), ignoring ``start_batch``."""
        epoch = self.epoch if epoch is None else int(epoch)
        n = self.lengths.size
        if not self.shuffle:
            return _chunk(np.arange(n), self.batch_size)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n)
        if not self.group_by_length:
            return _chunk(order, self.batch_size)
        megabatch = np.arange(n) // (self.megabatch_size * self.batch_size)
        order = order[np.lexsort((-self.lengths[order], megabatch))]  # per megabatch, longest first
        batches = _chunk(order, self.batch_size)
        batches = [batches[i] for i in rng.permutation(len(batches))]
        if batches:
            longest = int(np.argmax([self.lengths[batch].max() for batch in batches]))
            batches[0], batches[longest] = batches[longest], batches[0]
        return batches


def _chunk(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return np.split(order, np.arange(batch_size, order.size, batch_size)) if order.size else []
