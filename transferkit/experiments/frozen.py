"""Frozen-encoder fitting: features computed once (cached on disk for pooled features), then only a head trains."""

from __future__ import annotations

from typing import Any

import numpy as np

from transferkit.core.config import RunConfig
from transferkit.core.contracts import Splits
from transferkit.core.errors import UserError
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.modules.inference import run_ragged
from transferkit.serving import NeuralPredictor
from transferkit.strategies.base import Strategy
from transferkit.training import FitResult, Trainer


def fit_frozen(config: RunConfig, strategy: Strategy, predictor: NeuralPredictor, splits: Splits, trainer: Trainer,
                resume: bool, cache: EmbeddingCache, fingerprint: str) -> FitResult | None:
    """Frozen encoder: ``Z = encoder.encode(texts)`` through the cache, then a closed-form or Trainer-fitted head.

    One path for every frozen text encoder (``core.contracts.TextEncoder``): a transformer's pooled
    states (``NeuralPredictor.text_encoder``) or a packaged sentence encoder such as use-multilingual.
    """
    model, task = predictor.model, predictor.task
    if task.feature_kind == "tokens":
        return fit_frozen_tokens(config, strategy, predictor, splits, trainer, resume)
    if task.feature_kind != "pooled":
        raise UserError(f"strategy '{strategy.name}' needs a task with encoder features; '{task.name}' has none")
    encoder = predictor.text_encoder(fingerprint)

    def encode(examples: Any) -> np.ndarray:
        return encoder.encode(examples.texts, examples.text_pairs)  # (n, dim) float32

    model.eval()
    key = encoder.cache_key()
    train_x, eval_x = cache.features(key, splits.train, encode), cache.features(key, splits.eval, encode)
    train_y = np.asarray(splits.train.labels)
    if strategy.fit_head(model, train_x, train_y, config.training.seed):
        return None
    rows = [{"features": x, "labels": int(y)} for x, y in zip(train_x, train_y, strict=True)]
    eval_rows = [{"features": x} for x in eval_x]
    batches = strategy.batch_source({"train": rows}, predictor.collator, config.training)
    return trainer.fit(model, batches, lambda m: predictor.metrics_on(m, eval_rows, splits.eval, 1024), resume=resume)


def fit_frozen_tokens(config: RunConfig, strategy: Strategy, predictor: NeuralPredictor, splits: Splits,
                       trainer: Trainer, resume: bool) -> FitResult:
    """Per-token tasks: the frozen encoder's token states ``H = h_layer(x)`` (len_i, dim) of every window,
    computed once in memory; the Trainer then fits the token/span head ``W h_t + b`` on them for all epochs.

    Rows keep the original features (``input_ids`` for length grouping and for cutting padded
    outputs, ``_`` metadata for decoding); ``TaskModel.forward`` sees ``features`` and skips the encoder.
    """
    model = predictor.model
    model.eval()

    def with_states(examples: Any) -> list[dict[str, Any]]:
        features = predictor.featurize(examples)
        states = run_ragged(model.hidden_states, features, predictor.collator, predictor.batch_size)
        return [{**feature, "features": state} for feature, state in zip(features, states, strict=True)]

    train_rows, eval_rows = with_states(splits.train), with_states(splits.eval)
    batches = strategy.batch_source({"train": train_rows}, predictor.collator, config.training)
    return trainer.fit(model, batches, lambda m: predictor.metrics_on(m, eval_rows, splits.eval), resume=resume)


def fit_head_after_training(strategy: Strategy, predictor: NeuralPredictor, splits: Splits, seed: int) -> None:
    """``head_after_training`` strategies: the trained encoder's pooled features of the training set (not
    cached: the weights just changed), then the strategy's closed-form head on them."""
    if predictor.task.feature_kind != "pooled":
        raise UserError(f"strategy '{strategy.name}' fits a head on pooled features; task '{predictor.task.name}' has none")
    encoder = predictor.text_encoder("trained")
    features = encoder.encode(splits.train.texts, splits.train.text_pairs)  # (n, dim) float32
    if not strategy.fit_head(predictor.model, features, np.asarray(splits.train.labels), seed):
        raise RuntimeError(f"strategy '{strategy.name}' sets head_after_training but its fit_head fitted nothing")
