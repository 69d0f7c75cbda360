"""Batched inference: length-sorted batches, ``inference_mode``, original order restored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch


def run_batches(
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    features: list[dict[str, Any]],
    collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    device: torch.device | str = "cpu",
    progress: Any = None,
    ragged: bool | Literal["rows"] = False,
) -> np.ndarray | list[np.ndarray]:
    """Apply ``forward`` to every feature; returns (n, ...) float32 outputs in input order.

    Sorting by length first means each batch pads to a near-equal length, which on a CPU
    is most of the speed of inference.  ``ragged``: per-token outputs, returned as a list of
    (length_i, ...) arrays with the padding cut off; ``"rows"``: a list of whole output rows
    (e.g. generated token ids, whose width is not the input's).  Integer outputs stay integers.
    """
    if not features:
        return np.zeros((0,), dtype=np.float32)
    lengths = np.array([len(f.get("input_ids", ())) for f in features])
    order = np.argsort(-lengths, kind="stable")
    outputs: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = [features[i] for i in order[start : start + batch_size]]
            batch = {k: v.to(device) for k, v in collator(chunk).items() if k != "labels"}
            output = forward(batch)
            output = (output.float() if output.is_floating_point() else output).cpu().numpy()
            if ragged == "rows":
                outputs.extend(output)
            elif ragged:
                outputs.extend(row[: len(f["input_ids"])] for row, f in zip(output, chunk, strict=True))
            else:
                outputs.append(output)
            if progress is not None:
                progress.update(len(chunk))
    if ragged:
        result_list: list[np.ndarray] = [np.empty(0)] * len(features)
        for position, index in enumerate(order):
            result_list[index] = outputs[position]
        return result_list
    stacked = np.concatenate(outputs)
    result = np.empty_like(stacked)
    result[order] = stacked
    return result
