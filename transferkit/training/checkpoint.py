"""Resumable checkpoints: model, optimizer, scheduler, RNG and data position.

Weights go to safetensors; optimizer/scheduler/RNG state (tensors, ints, lists) to a
torch file read back with ``weights_only=True``.  A checkpoint is written to a temporary
directory and renamed, so a kill mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from transferkit.core.contracts import TrainState

STATE_FILE = "trainer_state.json"


def state_dict_for_saving(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}


def trainable_state(module: torch.nn.Module, optimizer: Any) -> dict[str, torch.Tensor]:
    """Only the parameters the optimizer updates: everything else never changes during fit.

    Keeps checkpoints and the in-memory best state small when the encoder is frozen.
    """
    ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return {n: p.detach().contiguous().clone() for n, p in module.named_parameters() if id(p) in ids}


def save_checkpoint(directory: str, model: torch.nn.Module, optimizer: Any, scheduler: Any, state: TrainState,
                    best_state: dict[str, torch.Tensor] | None) -> None:
    tmp = directory + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file(trainable_state(model, optimizer), os.path.join(tmp, "model.safetensors"))
    if best_state is not None:
        save_file(best_state, os.path.join(tmp, "best.safetensors"))
    rng = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state()[1].astype(np.int64).tolist(),
        "numpy_pos": int(np.random.get_state()[2]),
        "python": random.getstate()[1],
    }
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
               os.path.join(tmp, "optimizer.pt"))
    with open(os.path.join(tmp, STATE_FILE), "w", encoding="utf-8") as handle:
        json.dump(dataclasses.asdict(state), handle)
    old = directory + ".old"
    if os.path.exists(directory):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def _complete(directory: str) -> str | None:
    """The newest complete checkpoint: ``directory``, or ``.old`` if a kill struck between the two renames."""
    for candidate in (directory, directory + ".old"):
        if os.path.exists(os.path.join(candidate, STATE_FILE)):
            return candidate
    return None


def has_checkpoint(directory: str) -> bool:
    return _complete(directory) is not None


def load_checkpoint(directory: str, model: torch.nn.Module, optimizer: Any, scheduler: Any
                    ) -> tuple[TrainState, dict[str, torch.Tensor] | None]:
    directory = _complete(directory) or directory
    model.load_state_dict(load_file(os.path.join(directory, "model.safetensors")), strict=False)
    extra = torch.load(os.path.join(directory, "optimizer.pt"), weights_only=True)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    rng = extra["rng"]
    torch.set_rng_state(rng["torch"])
    np.random.set_state(("MT19937", np.array(rng["numpy"], dtype=np.uint32), rng["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(rng["python"]), None))
    with open(os.path.join(directory, STATE_FILE), encoding="utf-8") as handle:
        state = TrainState(**json.load(handle))
    best_path = os.path.join(directory, "best.safetensors")
    best = load_file(best_path) if os.path.exists(best_path) else None
    return state, best
