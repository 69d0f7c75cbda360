"""``check_strategy``: the contract every strategy must meet, runnable by third parties.

Like scikit-learn's ``check_estimator``: construct with defaults, prepare a tiny model,
train a few steps through the shared Trainer (or the closed-form / classical path), and
check the invariants the rest of transferkit relies on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from transferkit.core.config import TrainingConfig
from transferkit.core.contracts import Losses, TextExamples
from transferkit.data.collate import PaddingCollator
from transferkit.modules.task_model import build_task_model
from transferkit.strategies.common import load_source
from transferkit.training.inference import run_batches
from transferkit.training.trainer import Trainer, seed_everything


def source_model_for(strategy_cls: type, transformer_model: str, vectors: str) -> str:
    """The source a strategy's contract runs on: ``vectors`` when its ``model_kind`` is ``vectors``
    (e.g. ``word_vectors``), else ``transformer_model`` (a tiny BERT directory)."""
    return vectors if getattr(strategy_cls, "model_kind", "transformer") == "vectors" else transformer_model


def check_strategy(strategy_cls: type, task: Any, model_dir: str, train: TextExamples) -> dict[str, Any]:
    """Assert the strategy contract on a tiny model; returns what was observed (for tests to inspect).

    ``model_dir`` is the source model: a tiny transformer directory, or a small word-vectors
    file for a strategy whose ``model_kind`` is ``vectors`` (see :func:`source_model_for`).
    """
    assert isinstance(strategy_cls.name, str) and strategy_cls.name
    assert getattr(strategy_cls, "model_kind", "transformer") in ("transformer", "vectors"), strategy_cls.model_kind
    assert strategy_cls.kind in ("neural", "frozen", "classical"), strategy_cls.kind
    assert dataclasses.is_dataclass(strategy_cls.Config), "Config must be a dataclass"
    for field in dataclasses.fields(strategy_cls.Config):
        assert field.metadata.get("help"), f"{strategy_cls.name}.Config.{field.name} has no help text"
    strategy = strategy_cls(strategy_cls.Config())
    assert dataclasses.asdict(strategy.config) == dataclasses.asdict(strategy_cls.Config()), "constructor must only store"
    if strategy.kind == "classical":
        predictor = strategy.fit(train, task.labels, 0)
        probabilities = predictor.predict_proba(train)
        assert np.allclose(probabilities.sum(axis=1), 1.0)
        return {"probabilities": probabilities}
    return _check_neural(strategy, task, model_dir, train)


def _check_neural(strategy: Any, task: Any, model_dir: str, train: TextExamples) -> dict[str, Any]:
    seed_everything(0)
    loaded = load_source(strategy, model_dir, train, seq2seq=getattr(task, "generative", False))
    model = strategy.prepare(build_task_model(loaded, task, getattr(strategy, "mlp_hidden", 0)))
    groups = strategy.param_groups(model, 1e-3, 1e-3, 0.01)
    in_optimizer = {id(p) for group in groups for p in group["params"]}
    assert in_optimizer, "param_groups returned no parameters"
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert all(id(p) not in in_optimizer for n, p in model.named_parameters() if n in frozen), \
        "frozen parameters must carry no optimizer state"
    features = task.featurize(train, loaded.tokenizer, 64)
    collator = PaddingCollator(loaded.tokenizer.pad_token_id)
    losses = strategy.loss(model, collator(features[:8]))
    assert isinstance(losses, Losses) and torch.isfinite(losses.total) and losses.total.requires_grad
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = TrainingConfig(epochs=1, batch_size=8, learning_rate=1e-3, progress=False, checkpoint_every=0)
    Trainer(strategy, config, collator).fit(model, features)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed, "training changed no parameter"
    assert not changed & set(frozen), f"frozen parameters changed: {sorted(changed & set(frozen))[:3]}"
    model.eval()
    if getattr(task, "generative", False):  # generated token ids, one row per example
        ids = run_batches(lambda b: model.generate_ids(b, **task.generation_options()), features, collator, 32,
                          ragged="rows")
        assert len(ids) == len(features) and all(row.dtype.kind == "i" for row in ids)
        return {"changed": changed, "frozen": frozen, "logits": ids}
    ragged = getattr(task, "ragged_outputs", False)
    logits = run_batches(lambda b: model(b)["logits"], features, collator, 32, ragged=ragged)
    if ragged:  # per-token tasks: one (length, num_labels) array per feature
        assert [len(x) for x in logits] == [len(f["input_ids"]) for f in features]
        assert all(x.shape[1] == len(task.labels) for x in logits)
    else:
        assert logits.shape == (len(train), len(task.labels))
    return {"changed": changed, "frozen": frozen, "logits": logits}
