"""The teacher of a distillation run: checked before any work, its outputs computed once per distinct text.

``teacher: RUN_DIR`` names a finished neural run of the same task and labels.  Before training, every
training row (and every row of ``data.sources.unlabeled``) gets ``teacher_logits`` (and, when the
strategy asks, ``teacher_features``): for tasks with one prediction per text these come through the
content-addressed :class:`~transferkit.experiments.embedding_cache.EmbeddingCache` under the teacher's
weights fingerprint, computed on the teacher's own tokenisation (so any student tokenizer works), and
a grid's seeds and budgets share them.  Per-token tasks need the student's tokens to be the
teacher's (the logits are matched position by position): the teacher runs on the student's rows, in
memory, and tokenizers that disagree are refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from transferkit.core.errors import UserError
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.experiments.init_from import fingerprint_run
from transferkit.modules.inference import run_batches, run_ragged
from transferkit.serving import NeuralPredictor
from transferkit.serving.predictor import META_FILE, load_predictor, merge_delta, model_dir, read_meta


@dataclass
class Teacher:
    """A loaded teacher run: its predictor (task model + tokenizer) and the fingerprint of its weights."""

    run: str
    predictor: NeuralPredictor
    fingerprint: str

    @property
    def model(self) -> Any:
        return self.predictor.model


def check_teacher(run_dir: str, task_name: str) -> None:
    """Before any work: ``run_dir`` is a finished neural run of task ``task_name``."""
    where = f"teacher {run_dir}"
    if not os.path.isfile(os.path.join(model_dir(run_dir), META_FILE)):
        raise UserError(f"{where}: not a finished neural transferkit run (no model/{META_FILE})")
    meta = read_meta(model_dir(run_dir))
    if meta.get("task") != task_name:
        raise UserError(f"{where}: that run's task is '{meta.get('task')}', this run's is '{task_name}'")


def load_teacher(run_dir: str, labels: list[str]) -> Teacher:
    """The teacher's model in eval mode (a LoRA/BitFit delta merged); its labels must be the run's, in order."""
    predictor = load_predictor(run_dir)
    if not isinstance(predictor, NeuralPredictor):
        raise UserError(f"teacher {run_dir}: a {type(predictor).__name__} model has no logits to distil")
    if "base_model" in predictor.meta:
        predictor = merge_delta(predictor)
    if predictor.labels != list(labels):
        raise UserError(f"teacher {run_dir}: its labels {predictor.labels} differ from this run's {list(labels)} "
                        "(distillation matches logits class by class: train the teacher on the same label set)")
    predictor.model.eval()
    return Teacher(run_dir, predictor, fingerprint_run(run_dir))


def _forward(model: Any, outputs: frozenset[str]) -> Any:
    """The teacher's requested outputs of one batch, concatenated on the last axis: logits [+ features]."""
    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = model(batch)
        return torch.cat([out["logits"], out["features"]], dim=-1) if "features" in outputs else out["logits"]

    return forward


def attach_teacher(teacher: Teacher, outputs: frozenset[str], examples: Any, rows: list[dict[str, Any]],
                   tokenizer: Any, cache: EmbeddingCache) -> None:
    """Add ``teacher_logits`` (+ ``teacher_features``) to every row of ``examples``' featurised ``rows``, in place."""
    predictor = teacher.predictor
    classes = len(predictor.labels)
    if predictor.task.feature_kind == "pooled":
        values = _pooled_outputs(teacher, outputs, examples, cache)
        if len(values) != len(rows):
            raise RuntimeError(f"{len(rows)} featurised rows for {len(values)} examples: one row per text expected")
    else:
        if predictor.tokenizer.get_vocab() != tokenizer.get_vocab():
            raise UserError(f"teacher {teacher.run}: its tokenizer differs from the student's; per-token logits can only "
                            "be distilled between models that split text into the same tokens (use the teacher's model)")
        values = run_ragged(_forward(predictor.model, outputs), rows, predictor.collator, predictor.batch_size)
    for row, value in zip(rows, values, strict=True):
        row["teacher_logits"] = np.ascontiguousarray(value[..., :classes], dtype=np.float32)
        if "features" in outputs:
            row["teacher_features"] = np.ascontiguousarray(value[..., classes:], dtype=np.float32)


def _pooled_outputs(teacher: Teacher, outputs: frozenset[str], examples: Any, cache: EmbeddingCache) -> np.ndarray:
    """(n, classes [+ dim]) teacher outputs per text, through the embedding cache (one pass per distinct text)."""
    predictor = teacher.predictor

    def encode(subset: Any) -> np.ndarray:
        features = predictor.featurize(subset)
        return run_batches(_forward(predictor.model, outputs), features, predictor.collator, predictor.batch_size)

    key = {"teacher": teacher.fingerprint, "max_length": predictor.max_length, "outputs": sorted(outputs)}
    return cache.features(key, examples, encode)
