"""``select``: rank candidate source models on the user's labelled data in seconds, before any fine-tuning.

Each candidate's frozen features of the data (every layer, :mod:`~transferkit.experiments.candidate_features`,
cached) are scored by a transferability estimator (:mod:`transferkit.evaluation.transferability`; LogME by
default, You et al. 2021) after layer aggregation (``mean`` of all layers by default: Garbaciauskas et al. 2024
report it lifts LogME's correlation with fine-tuned rank).  ``nce`` and ``leep`` (Tran et al. 2019; Nguyen et al.
2020) score a candidate that carries a classifier: a finished transferkit run, through its class probabilities.

>>> records = select("train.tsv", ["minilm-l6", "multilingual-e5-small", "random-bert"])   # doctest: +SKIP
>>> [(r["model"], round(r["score"], 3)) for r in records]                                  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import resource
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from transferkit.core.atomic import write_json_atomic
from transferkit.core.config import DataConfig, build_dataclass
from transferkit.core.errors import UserError
from transferkit.core.run_files import check_finished_run, model_dir
from transferkit.evaluation.transferability import LayerScore, score_layers
from transferkit.evaluation.transferability import estimator as find_estimator
from transferkit.experiments.candidate_features import candidate_features, check_candidate
from transferkit.experiments.embedding_cache import default_cache_dir
from transferkit.models import catalog_names, get_entry
from transferkit.tasks import TASKS

LAYER_CHOICES = ("last", "mean", "best")


def select(train: str, models: Sequence[str], estimator: str = "logme", layers: str = "mean",
           sample: int | None = None, task: str = "classification", data: dict[str, Any] | None = None,
           output: str | None = None, cache_dir: str | None = None, max_length: int = 128, seed: int = 0,
           progress: bool = True) -> list[dict[str, Any]]:
    """Score every candidate in ``models`` on the labelled file ``train``; records best first.

    Args:
        train: labelled data, read by the task (columns and format in ``data``, as in a run's ``data`` section).
        models: catalog names, model directories, hub ids; for ``nce``/``leep``, finished classification runs.
        estimator: ``logme``, ``hscore``, ``hscore_shrink``, ``knn``, ``linear``, ``nce`` or ``leep``.
        layers: ``last``, ``mean`` (of all layers) or ``best`` (the highest-scoring layer, named in the record).
        sample: score a stratified sample of this many examples (None = all).
        output: write the records as JSON here (atomically).

    Returns:
        One record per candidate, ``{model, layers, layer, estimator, score, seconds, peak_rss_mb, ...}``,
        highest score first; ``seconds`` is this call's CPU time for the candidate (features from the cache
        cost almost nothing: ``feature_seconds`` keeps what computing them cost).
    """
    spec = find_estimator(estimator)
    if layers not in LAYER_CHOICES:
        raise UserError(f"select: --layers must be one of {', '.join(LAYER_CHOICES)}, got '{layers}'")
    candidates = _candidates(models)
    task_obj, examples, fingerprint = read_target(train, task, data or {}, sample, seed)
    for model_ref in candidates:
        check_candidate_model(model_ref, task_obj, spec.needs)
    root = cache_dir or default_cache_dir()
    records = []
    for model_ref in _progress(candidates, progress):
        records.append(_score(model_ref, spec, layers, task_obj, examples, fingerprint, root, max_length))
    records.sort(key=lambda record: -record["score"])
    for rank, record in enumerate(records, 1):
        record["rank"] = rank
    if output:
        write_json_atomic(output, records)
    return records


def read_target(train: str, task: str, data: dict[str, Any], sample: int | None, seed: int
                ) -> tuple[Any, Any, str]:
    """The task (with the file's labels), the examples to score and a fingerprint of exactly those rows."""
    task_cls = TASKS.get(task)
    options = {**data, "train": train, "eval": train, "max_train_examples": sample, "eval_fraction": 0.1}
    data_config = build_dataclass(DataConfig, options, "select data")
    splits = task_cls.read_splits(data_config, task_cls.Config(), seed)
    task_obj = task_cls(task_cls.Config(), splits.labels)
    digest = hashlib.sha256()
    with open(train, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(json.dumps({**dataclasses.asdict(data_config), "seed": seed}, sort_keys=True, default=str).encode())
    return task_obj, splits.train, digest.hexdigest()


def _candidates(models: Sequence[str]) -> list[str]:
    names = [str(m).strip() for m in models if str(m).strip()]
    if not names:
        raise UserError("select: --models needs at least one candidate, e.g. --models minilm-l6,multilingual-e5-small")
    if len(set(names)) != len(names):
        raise UserError(f"select: a candidate is named twice in --models: {', '.join(names)}")
    return names


def check_candidate_model(model_ref: str, task: Any, needs: str) -> None:
    """Before any work: the candidate exists and can give what the estimator needs."""
    is_run = os.path.isdir(model_ref) and os.path.isfile(os.path.join(model_dir(model_ref), "transferkit.json"))
    if needs == "source_predictions":
        if not is_run:
            raise UserError(f"select: '{model_ref}' carries no classifier; nce and leep score finished transferkit "
                            "classification runs (give run directories), or choose --estimator logme")
        check_finished_run(model_ref, "classification", f"select candidate {model_ref}")
        return
    if get_entry(model_ref) is None and not os.path.exists(os.path.expanduser(model_ref)) and "/" not in model_ref:
        raise UserError(f"select: unknown model '{model_ref}' (catalog: {', '.join(catalog_names())}; "
                        "or a model directory or a hub id)")
    check_candidate(model_ref, task)


def _score(model_ref: str, spec: Any, layers: str, task: Any, examples: Any, fingerprint: str, root: str,
           max_length: int) -> dict[str, Any]:
    start = time.process_time()
    if spec.needs == "source_predictions":
        from transferkit.serving import load_predictor

        predictor = load_predictor(model_ref)
        probabilities = predictor.task.probabilities(predictor.predict(examples))
        labels = np.asarray(task.references(examples), dtype=np.int64)
        result = LayerScore(spec(np.asarray(probabilities), labels), None, None)
        feature_seconds, cached, width = time.process_time() - start, False, probabilities.shape[1]
    else:
        features = candidate_features(model_ref, task, examples, root, fingerprint, max_length)
        result = score_layers(spec.name, features.layers, features.labels, layers)
        feature_seconds, cached, width = features.seconds, features.cached, features.layers[0].shape[1]
        labels = features.labels
    record = {"model": model_ref, "layers": layers, "layer": result.layer, "estimator": spec.name,
              "score": float(result.score), "seconds": round(time.process_time() - start, 3),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "feature_seconds": round(feature_seconds, 3), "cached": cached, "examples": int(len(labels)),
              "dim": int(width)}
    if result.per_layer is not None:
        record["per_layer"] = [float(score) for score in result.per_layer]
    return record


def _progress(candidates: list[str], enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(candidates, desc="select", unit="model", disable=not enabled, leave=False)
