"""What a candidate source model sees in the target data, for transferability scoring (``select``).

For a transformer, every layer's states ``h_0 (embeddings), h_1 ... h_L`` under the candidate's own
tokenizer, in one forward pass (bf16 autocast where the CPU multiplies bf16 natively, like training):

* pooled tasks (classification): the mean of each layer's non-padding token states, (n, L+1, d);
* per-token tasks (NER): each labelled position's states (its first subword), (tokens, L+1, d).

A static word-vector model gives one "layer", the mean of the text's word vectors; a packaged sentence
encoder (use-multilingual) one "layer", its own vector.  Labels come from the task's featurisation
(``labels`` of each feature), so the task decides what a target is and nothing here names a task.

Features are cached on disk once per (candidate, data, settings): a second ``select`` is instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from transferkit.core.atomic import atomic_path
from transferkit.core.contracts import IGNORE_INDEX
from transferkit.core.errors import UserError
from transferkit.core.machine import autocast, resolve_precision
from transferkit.data.collate import PaddingCollator
from transferkit.models import get_entry, load_backbone, text_encoder
from transferkit.models.loading import LoadedModel, files_fingerprint, reference_fingerprint
from transferkit.models.vectors import model_kind, read_vectors
from transferkit.models.word_vectors import build_tokenizer, vocabulary
from transferkit.modules.inference import run_batches, run_ragged
from transferkit.modules.pooling import mean_pool
from transferkit.modules.task_model import BACKBONE_INPUTS

FEATURES_VERSION = 1
"""Bumped when the way features are computed changes, so old cache entries are not reused."""


@dataclass
class CandidateFeatures:
    """``layers[i]`` (n, d) float32, bottom (embeddings) to top; ``labels`` (n,) int targets."""

    layers: list[np.ndarray]
    labels: np.ndarray
    seconds: float
    cached: bool


def candidate_kind(model_ref: str) -> str:
    """``transformer``, ``vectors`` (a catalog entry or a vectors file) or ``text_encoder``."""
    return model_kind(model_ref)


def check_candidate(model_ref: str, task: Any) -> None:
    """Fail before any work when the candidate cannot give the features this task needs."""
    if task.feature_kind == "none":
        raise UserError(f"select: task '{task.name}' has no encoder features to score (it generates text)")
    kind = candidate_kind(model_ref)
    if kind != "transformer" and task.feature_kind != "pooled":
        raise UserError(f"select: '{model_ref}' is a {kind} model: it has no per-token states for task "
                        f"'{task.name}'; choose transformer candidates")


def candidate_features(model_ref: str, task: Any, examples: Any, cache_root: str, fingerprint: str,
                       max_length: int = 128, batch_size: int = 32) -> CandidateFeatures:
    """Every layer's features of ``examples`` under ``model_ref``, from the cache when they were computed before.

    ``fingerprint`` identifies the data (the caller hashes the file and the options that select rows)."""
    key = {"version": FEATURES_VERSION, "model": _model_fingerprint(model_ref), "data": fingerprint,
           "max_length": max_length, "task": task.name, "labels": task.labels}
    path = os.path.join(cache_root, "selection", hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
                        + ".safetensors")
    if os.path.isfile(path):
        stored = load_file(path)
        layers = [stored[f"layer.{i}"].astype(np.float32) for i in range(int(stored["count"][0]))]
        return CandidateFeatures(layers, stored["labels"].astype(np.int64), float(stored["seconds"][0]), True)
    start = time.process_time()
    layers, labels = _compute(model_ref, task, examples, max_length, batch_size)
    seconds = time.process_time() - start
    arrays = {f"layer.{i}": layer.astype(np.float16) for i, layer in enumerate(layers)}
    arrays.update(labels=labels.astype(np.int64), count=np.array([len(layers)]), seconds=np.array([seconds]))
    with atomic_path(path) as tmp:
        save_file(arrays, tmp)
    return CandidateFeatures([layer.astype(np.float16).astype(np.float32) for layer in layers], labels, seconds, False)


def _model_fingerprint(model_ref: str) -> str:
    """The weights' identity without loading them: a transformer's directory fingerprint (config bytes, weight files'
    sizes and times) or hub revision; for vectors and frozen encoders, the files where the reference resolves."""
    if candidate_kind(model_ref) == "transformer":
        return reference_fingerprint(model_ref)
    entry = get_entry(str(model_ref).strip())
    return files_fingerprint(entry.resolve() if entry is not None else os.path.expanduser(model_ref))


def _compute(model_ref: str, task: Any, examples: Any, max_length: int, batch_size: int
             ) -> tuple[list[np.ndarray], np.ndarray]:
    kind = candidate_kind(model_ref)
    if kind == "vectors":
        return [_word_vector_means(model_ref, examples)], _pooled_labels(task, examples)
    if kind == "text_encoder":
        encoder = text_encoder(model_ref)
        return [encoder.encode(examples.texts, examples.text_pairs)], _pooled_labels(task, examples)
    torch.manual_seed(0)
    loaded = load_backbone(model_ref)
    features = task.featurize(examples, loaded.tokenizer, max_length)
    if not features or "labels" not in features[0]:
        raise UserError(f"select: task '{task.name}' gives no labels per example or per token to score against")
    if task.feature_kind == "pooled":
        return _pooled_states(loaded, features, batch_size)
    return _token_states(loaded, features, batch_size)


def _pooled_labels(task: Any, examples: Any) -> np.ndarray:
    return np.asarray(task.references(examples), dtype=np.int64)


def _forward_all(loaded: LoadedModel, pooled: bool) -> Any:
    """Forward returning every layer: pooled (batch, L+1, d) or per token (batch, seq, L+1, d)."""
    precision = resolve_precision("auto", "cpu")
    backbone = loaded.backbone.eval()

    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: batch[k] for k in BACKBONE_INPUTS if k in batch}
        with autocast(precision, "cpu"):
            states = backbone(**inputs, output_hidden_states=True).hidden_states  # L+1 × (batch, seq, d)
        if pooled:
            return torch.stack([mean_pool(h.float(), inputs["attention_mask"]) for h in states], dim=1)
        return torch.stack([h.float() for h in states], dim=2)

    return forward


def _pooled_states(loaded: LoadedModel, features: list[dict[str, Any]], batch_size: int
                   ) -> tuple[list[np.ndarray], np.ndarray]:
    collator = PaddingCollator(loaded.tokenizer.pad_token_id or 0)
    states = run_batches(_forward_all(loaded, True), features, collator, batch_size)  # (n, L+1, d)
    labels = np.array([int(f["labels"]) for f in features], dtype=np.int64)
    return [np.ascontiguousarray(states[:, i]) for i in range(states.shape[1])], labels


def _token_states(loaded: LoadedModel, features: list[dict[str, Any]], batch_size: int
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """The states of each labelled position (a word's first subword), all windows together."""
    collator = PaddingCollator(loaded.tokenizer.pad_token_id or 0)
    per_window = run_ragged(_forward_all(loaded, False), features, collator, batch_size)  # (len, L+1, d) each
    kept, labels = [], []
    for states, feature in zip(per_window, features, strict=True):
        window_labels = np.asarray(feature["labels"], dtype=np.int64)
        mask = window_labels != IGNORE_INDEX
        kept.append(states[mask])
        labels.append(window_labels[mask])
    stacked = np.concatenate(kept)  # (tokens, L+1, d)
    return [np.ascontiguousarray(stacked[:, i]) for i in range(stacked.shape[1])], np.concatenate(labels)


def _word_vector_means(model_ref: str, examples: Any) -> np.ndarray:
    """Each text's mean word vector (lowercased words the vectors know; zeros when it knows none)."""
    texts = [t if p is None else f"{t} {p}" for t, p in
             zip(examples.texts, examples.text_pairs or [None] * len(examples.texts), strict=True)]
    tokenizer = build_tokenizer(texts, lowercase=True)
    words = vocabulary(tokenizer)
    vectors = read_vectors(model_ref, set(words))
    table = np.zeros((len(words), vectors.dim), dtype=np.float32)
    known = np.zeros(len(words), dtype=bool)
    for row, word in enumerate(words):
        if word in vectors.index:
            table[row], known[row] = vectors.matrix[vectors.index[word]], True
    means = np.zeros((len(texts), vectors.dim), dtype=np.float32)
    for i, ids in enumerate(tokenizer(texts, add_special_tokens=False)["input_ids"]):
        ids = np.asarray(ids, dtype=np.int64)
        ids = ids[known[ids]] if len(ids) else ids
        if len(ids):
            means[i] = table[ids].mean(axis=0)
    return means
