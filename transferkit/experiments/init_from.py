"""Sequential transfer: start a run from the trained weights of another finished run.

Intermediate-task training (STILTs, Phang et al. 2018) and the few-shot cross-lingual recipe
"fine-tune on the source language first, then on k target-language labels per class" (Lauscher
et al. 2020, "From Zero to Hero") both initialise the target run with θ₀ = θ*_source, the
parameters a previous run ended with, instead of the pretrained checkpoint's.

``init_from: RUN_DIR`` copies that run's encoder into the new model before the strategy prepares
it (so LoRA/BitFit then train a delta on top of the source run's encoder), and its head too when
the two runs predict the same labels (same order, same shapes); a delta run (LoRA/BitFit) is
merged first.  The new run saves full weights, so it never depends on the source run's directory
to load.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from transferkit.core.errors import UserError
from transferkit.serving import NeuralPredictor
from transferkit.serving.predictor import load_predictor, merge_delta, model_dir


@dataclass(frozen=True)
class Initialisation:
    """What was copied from the source run: ``head`` is True when its head was kept."""

    run: str
    head: bool
    fingerprint: str

    def describe(self) -> dict[str, Any]:
        return {"run": self.run, "head": "kept" if self.head else "new (labels differ)", "fingerprint": self.fingerprint}


def initialise_from(model: Any, run_dir: str, task: Any) -> Initialisation:
    """Copy ``run_dir``'s encoder (and head when labels match) into ``model`` (checked by ``run.check_start``)."""
    predictor = load_predictor(run_dir)
    if not isinstance(predictor, NeuralPredictor):
        raise UserError(f"init_from {run_dir}: a {type(predictor).__name__} model has no encoder to start from")
    if "base_model" in predictor.meta:
        predictor = merge_delta(predictor)
    source = predictor.model
    try:
        model.backbone.load_state_dict(source.backbone.state_dict(), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise UserError(f"init_from {run_dir}: its encoder does not fit this run's ({first})") from None
    head = predictor.labels == list(task.labels) and _same_shapes(model.head, source.head)
    if head:
        model.head.load_state_dict(source.head.state_dict())
    return Initialisation(run_dir, head, fingerprint_run(run_dir))


def _same_shapes(a: Any, b: Any) -> bool:
    shapes_a = {k: tuple(v.shape) for k, v in a.state_dict().items()}
    return shapes_a == {k: tuple(v.shape) for k, v in b.state_dict().items()}


def fingerprint_run(run_dir: str) -> str:
    """sha256 of the source run's model.safetensors (what the new run starts from)."""
    digest = hashlib.sha256()
    with open(os.path.join(model_dir(run_dir), "model.safetensors"), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
