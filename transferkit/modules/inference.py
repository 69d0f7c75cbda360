"""Batched inference: length-sorted batches, ``inference_mode``, original order restored.

Sorting by length first means each batch pads to a near-equal length, which on a CPU is
most of the speed of inference.  :func:`run_batches` stacks one output row per feature into
an (n, ...) array; :func:`run_ragged` returns one array per feature (per-token outputs with
the padding cut off, or whole rows such as generated token ids).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from transferkit.core.contracts import TextExamples

Forward = Callable[[dict[str, torch.Tensor]], torch.Tensor]

MAX_BATCH_TOKENS = 4096
"""Padded tokens per inference batch at most (``batch_size`` examples at most, too): long texts get smaller
batches, whose attention maps (batch x heads x length²) stay in cache, short ones keep the full batch."""


def length_batches(lengths: np.ndarray, batch_size: int, max_tokens: int = MAX_BATCH_TOKENS) -> list[np.ndarray]:
    """Indices of length-sorted batches (longest first): each has at most ``batch_size`` examples and, beyond
    its first, at most ``max_tokens`` padded tokens (``len(batch) × its longest``)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches, start = [], 0
    while start < len(order):
        size = max(1, min(batch_size, max_tokens // max(1, int(lengths[order[start]]))))
        batches.append(order[start: start + size])
        start += size
    return batches


def _sorted_outputs(forward: Forward, features: list[dict[str, Any]], collator: Callable, batch_size: int,
                    device: torch.device | str) -> Iterator[tuple[np.ndarray, list[dict[str, Any]], np.ndarray]]:
    """(outputs as numpy, the batch's features, their indices) per length-sorted batch; integers stay integers."""
    lengths = np.array([len(f.get("input_ids", ())) for f in features])
    with torch.inference_mode():
        for indices in length_batches(lengths, batch_size):
            chunk = [features[i] for i in indices]
            batch = {k: v.to(device) for k, v in collator(chunk).items() if k != "labels"}
            output = forward(batch)
            yield (output.float() if output.is_floating_point() else output).cpu().numpy(), chunk, indices


def run_batches(forward: Forward, features: list[dict[str, Any]], collator: Callable, batch_size: int,
                device: torch.device | str = "cpu") -> np.ndarray:
    """Apply ``forward`` to every feature; returns the (n, ...) outputs stacked in input order."""
    if not features:
        return np.zeros((0,), dtype=np.float32)
    parts, where = [], []
    for output, _, indices in _sorted_outputs(forward, features, collator, batch_size, device):
        parts.append(output)
        where.append(indices)
    stacked = np.concatenate(parts)
    result = np.empty_like(stacked)
    result[np.concatenate(where)] = stacked
    return result


def run_ragged(forward: Forward, features: list[dict[str, Any]], collator: Callable, batch_size: int,
               device: torch.device | str = "cpu", whole_rows: bool = False) -> list[np.ndarray]:
    """One output array per feature, in input order: per-token outputs cut to the feature's length,
    or (``whole_rows``) the whole row, e.g. generated token ids whose width is not the input's."""
    result: list[np.ndarray] = [np.empty(0)] * len(features)
    for output, chunk, indices in _sorted_outputs(forward, features, collator, batch_size, device):
        for row, feature, index in zip(output, chunk, indices, strict=True):
            result[index] = row if whole_rows else row[: len(feature["input_ids"])]
    return result


class PooledEncoder:
    """A task model's pooled features as a frozen text encoder (``core.contracts.TextEncoder``).

    ``encode(texts)`` = ``run_batches(model.encode, featurize(texts))``: the task's tokenisation,
    length-sorted batches of ``batch_size`` and the head's pooling ``z = pool(h_layer(x))``, exactly as
    feature extraction has always computed transformer features (the cache key is unchanged too).
    """

    def __init__(self, model: Any, featurize: Callable[[Any], list[dict[str, Any]]], collator: Callable,
                 batch_size: int, key: dict[str, Any]) -> None:
        self.model, self.featurize, self.collator, self.batch_size, self.key = model, featurize, collator, batch_size, key
        self.name = str(model.backbone.config.name_or_path)
        self.fingerprint = str(key["model"])
        self.dimension = int(model.backbone.config.hidden_size)

    def cache_key(self) -> dict[str, Any]:
        return dict(self.key)

    def encode(self, texts: list[str], text_pairs: list[str] | None = None) -> np.ndarray:
        """(n, dim) pooled features in input order."""
        self.model.eval()
        features = self.featurize(TextExamples(list(texts), text_pairs=None if text_pairs is None else list(text_pairs)))
        return run_batches(self.model.encode, features, self.collator, self.batch_size)
