"""Load a saved run's model and predict; the same objects save the model at the end of training.

A run's ``model/`` directory holds either a neural model (``transferkit.json`` +
``model.safetensors`` + backbone ``config.json`` + tokenizer) or a classical one
(``tfidf.json`` + ``tfidf.safetensors``).  Nothing is ever unpickled.

Strategies that train a small delta on a frozen base (``lora``, ``bitfit``: ``saves_delta``)
save only the parameters they train plus a reference to the base model
(``base_model`` in ``transferkit.json``); loading rebuilds the base, re-applies the
strategy and loads the delta on top.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np
from safetensors.torch import load_file, save_file

from transferkit.core.config import build_dataclass
from transferkit.core.contracts import Predictor, TextExamples
from transferkit.core.errors import UserError
from transferkit.data.collate import PaddingCollator
from transferkit.models import get_entry, load_backbone, resolve
from transferkit.modules.task_model import TaskModel, build_task_model
from transferkit.strategies import STRATEGIES
from transferkit.strategies.tfidf import TfidfPredictor
from transferkit.tasks import TASKS
from transferkit.training.checkpoint import state_dict_for_saving
from transferkit.training.inference import run_batches

META_FILE = "transferkit.json"
logger = logging.getLogger("transferkit")


class NeuralPredictor:
    """A ``TaskModel`` + tokenizer that maps examples to class probabilities."""

    def __init__(self, model: TaskModel, tokenizer: Any, max_length: int, meta: dict[str, Any], batch_size: int = 128) -> None:
        self.model, self.tokenizer, self.max_length, self.meta, self.batch_size = model, tokenizer, max_length, meta, batch_size
        self.task = model.task
        self.labels = list(self.task.labels)
        self.collator = PaddingCollator(tokenizer.pad_token_id or 0)

    def featurize(self, examples: TextExamples) -> list[dict[str, Any]]:
        return self.task.featurize(examples, self.tokenizer, self.max_length)

    def logits_of(self, model: Any, features: list[dict[str, Any]], batch_size: int | None = None) -> Any:
        """Logits of ``model`` (this predictor's or one in training) on features: an (n, num_labels)
        array, or a list of (length_i, num_labels) arrays for per-token tasks."""
        model.eval()
        device = next(model.parameters()).device
        if getattr(self.task, "generative", False):  # generated token ids, one row per example
            options = self.task.generation_options()
            return run_batches(lambda batch: model.generate_ids(batch, **options), features, self.collator,
                               batch_size or self.batch_size, device, ragged="rows")
        return run_batches(lambda batch: model(batch)["logits"], features, self.collator,
                           batch_size or self.batch_size, device, ragged=getattr(self.task, "ragged_outputs", False))

    def decode(self, outputs: Any, features: list[dict[str, Any]]) -> Any:
        """Task-space predictions from model outputs (generated ids need the tokenizer)."""
        if getattr(self.task, "generative", False):
            return self.task.decode(outputs, features, self.tokenizer)
        return self.task.decode(outputs, features)

    def metrics_on(self, model: Any, features: list[dict[str, Any]], references: Any, batch_size: int | None = None
                   ) -> dict[str, Any]:
        """The task's metrics of ``model`` on pre-featurised examples (per-epoch evaluation)."""
        return self.task.metrics(self.decode(self.logits_of(model, features, batch_size), features), references)

    def predict(self, examples: Any) -> Any:
        """Task-space predictions: class probabilities, tag sequences, ..."""
        features = self.featurize(examples)
        return self.decode(self.logits_of(self.model, features), features)

    def logits(self, examples: TextExamples) -> np.ndarray:
        return self.logits_of(self.model, self.featurize(examples))

    def predict_proba(self, examples: TextExamples) -> np.ndarray:
        return self.task.decode(self.logits(examples))

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.model.backbone.config.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        state = state_dict_for_saving(self.model)
        if "base_model" in self.meta:  # only what the strategy trains; the base is referenced
            trained = {name for name, p in self.model.named_parameters() if p.requires_grad}
            state = {name: tensor for name, tensor in state.items() if name in trained}
        save_file(state, os.path.join(directory, "model.safetensors"))
        meta = {**self.meta, "kind": "neural", "labels": self.labels, "max_length": self.max_length, "layer": self.model.layer}
        with open(os.path.join(directory, META_FILE), "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2)

    @classmethod
    def load(cls, directory: str) -> NeuralPredictor:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        with open(os.path.join(directory, META_FILE), encoding="utf-8") as handle:
            meta = json.load(handle)
        task_cls = TASKS.get(meta["task"])
        task = task_cls(build_dataclass(task_cls.Config, meta.get("task_options", {}), "model task"), meta["labels"])
        state = load_file(os.path.join(directory, "model.safetensors"))
        if "base_model" in meta:
            model = _delta_model(directory, meta, task, state)
        else:
            config = AutoConfig.from_pretrained(directory)
            if hasattr(task, "model_from_config"):  # e.g. an encoder-decoder LM
                model = task.model_from_config(config)
            else:
                model = TaskModel.build(AutoModel.from_config(config), task, meta.get("mlp_hidden", 0))
            model.load_state_dict(state)
        model.layer = meta.get("layer", -1)
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(directory)
        return cls(model, tokenizer, meta["max_length"], meta)


def _delta_model(directory: str, meta: dict[str, Any], task: Any, state: dict[str, Any]) -> TaskModel:
    """Base model (by reference) + the strategy's structure + the saved delta."""
    base = meta["base_model"]
    try:
        loaded = load_backbone(base["ref"], seq2seq=getattr(task, "generative", False))
    except UserError as exc:
        raise UserError(f"{directory}: this {meta['strategy']} model stores only its trained delta; its base model "
                        f"'{base['ref']}' cannot be loaded ({exc})") from None
    if loaded.fingerprint != base.get("fingerprint"):
        logger.warning("base model %s differs from the one this %s model was trained on (fingerprint changed)",
                       base["ref"], meta["strategy"])
    strategy_cls = STRATEGIES.get(meta["strategy"])
    strategy = strategy_cls(build_dataclass(strategy_cls.Config, meta.get("strategy_options", {}), "model strategy"))
    model = strategy.prepare(build_task_model(loaded, task, meta.get("mlp_hidden", 0)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    if unexpected or trained & set(missing):
        raise UserError(f"{directory}: model.safetensors does not fit {meta['strategy']} on {base['ref']} "
                        f"(unexpected: {sorted(unexpected)[:3]}, missing: {sorted(trained & set(missing))[:3]})")
    return model


def base_reference(model_ref: str, fingerprint: str) -> dict[str, str]:
    """How a delta model names its base: the catalog name when there is one, else the resolved path or hub id."""
    ref = model_ref if get_entry(model_ref) is not None else resolve(model_ref).path_or_id
    return {"ref": ref, "fingerprint": fingerprint}


def merge_delta(predictor: NeuralPredictor) -> NeuralPredictor:
    """Fold a delta model into full weights (LoRA/IA³: ``W = W₀ + ΔW``); the result needs no base model."""
    if "base_model" not in predictor.meta:
        raise UserError("this model already holds full weights: nothing to merge")
    merge = getattr(STRATEGIES.get(predictor.meta["strategy"]), "merge", None)
    if merge is not None:
        merge(predictor.model)
    meta = {k: v for k, v in predictor.meta.items() if k != "base_model"}
    meta["merged_from"] = predictor.meta["base_model"]["ref"]
    return NeuralPredictor(predictor.model, predictor.tokenizer, predictor.max_length, meta, predictor.batch_size)


def load_predictor(run_dir: str) -> Predictor:
    """Load the model of a finished run directory (or of its ``model/`` directory)."""
    model_dir = os.path.join(run_dir, "model") if os.path.isdir(os.path.join(run_dir, "model")) else run_dir
    if not os.path.isdir(run_dir):
        raise UserError(f"run directory not found: {run_dir}")
    if os.path.exists(os.path.join(model_dir, "tfidf.json")):
        return TfidfPredictor.load(model_dir)
    if os.path.exists(os.path.join(model_dir, META_FILE)):
        return NeuralPredictor.load(model_dir)
    partial = run_dir.rstrip("/") + ".partial"
    hint = f"; an unfinished run is in {partial} (continue it with --resume)" if os.path.isdir(partial) else ""
    raise UserError(f"{run_dir} is not a transferkit run (no model/{META_FILE} or model/tfidf.json){hint}")
