"""The teacher of a distillation run: loaded first, its outputs computed once per distinct text.

``teacher: RUN_DIR`` names a finished neural run of the same task and labels (checked before any work).
Before training, every training row (and every row of ``data.sources.unlabeled``) gets ``teacher_logits``
(and, when the strategy asks, ``teacher_features``): for tasks with one prediction per text these come
through the run's content-addressed embedding cache (``ctx.cached``) under the teacher's weights
fingerprint, computed on the teacher's own tokenisation (so any student tokenizer works), and a grid's
seeds and budgets share them.  Per-token tasks need the student's tokens to be the teacher's (the logits
are matched position by position): the teacher runs on the student's rows, in memory, and tokenizers that
disagree are refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from transferkit.core.contracts import FinishedRun, RunContext
from transferkit.core.errors import UserError
from transferkit.modules.inference import run_batches, run_ragged


def load_teacher(ctx: RunContext) -> FinishedRun:
    """The run's teacher in eval mode (a LoRA/BitFit delta merged); its labels must be the run's, in order."""
    teacher = ctx.load_run(ctx.config.teacher)
    labels = list(ctx.task.labels)
    if teacher.predictor.labels != labels:
        raise UserError(f"teacher {teacher.path}: its labels {teacher.predictor.labels} differ from this run's {labels} "
                        "(distillation matches logits class by class: train the teacher on the same label set)")
    return teacher


def _forward(model: Any, outputs: frozenset[str]) -> Any:
    """The teacher's requested outputs of one batch, concatenated on the last axis: logits [+ features]."""
    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = model(batch)
        return torch.cat([out["logits"], out["features"]], dim=-1) if "features" in outputs else out["logits"]

    return forward


def attach_teacher(ctx: RunContext, teacher: FinishedRun, outputs: frozenset[str], examples: Any,
                   rows: list[dict[str, Any]], tokenizer: Any) -> None:
    """Add ``teacher_logits`` (+ ``teacher_features``) to every row of ``examples``' featurised ``rows``, in place."""
    predictor = teacher.predictor
    classes = len(predictor.labels)
    if predictor.task.feature_kind == "pooled":
        values = _pooled_outputs(ctx, teacher, outputs, examples)
        if len(values) != len(rows):
            raise RuntimeError(f"{len(rows)} featurised rows for {len(values)} examples: one row per text expected")
    else:
        if predictor.tokenizer.get_vocab() != tokenizer.get_vocab():
            raise UserError(f"teacher {teacher.path}: its tokenizer differs from the student's; per-token logits can only "
                            "be distilled between models that split text into the same tokens (use the teacher's model)")
        values = run_ragged(_forward(predictor.model, outputs), rows, predictor.collator, predictor.batch_size)
    for row, value in zip(rows, values, strict=True):
        row["teacher_logits"] = np.ascontiguousarray(value[..., :classes], dtype=np.float32)
        if "features" in outputs:
            row["teacher_features"] = np.ascontiguousarray(value[..., classes:], dtype=np.float32)


def _pooled_outputs(ctx: RunContext, teacher: FinishedRun, outputs: frozenset[str], examples: Any) -> np.ndarray:
    """(n, classes [+ dim]) teacher outputs per text, through the embedding cache (one pass per distinct text)."""
    predictor = teacher.predictor

    def encode(subset: Any) -> np.ndarray:
        features = predictor.featurize(subset)
        return run_batches(_forward(predictor.model, outputs), features, predictor.collator, predictor.batch_size)

    key = {"teacher": teacher.fingerprint, "max_length": predictor.max_length, "outputs": sorted(outputs)}
    return ctx.cached(key, examples, encode)
