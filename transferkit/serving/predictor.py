"""Load a saved run's model and predict; the same objects save the model at the end of training.

A run's ``model/`` directory holds a neural model (``transferkit.json`` + ``model.safetensors`` +
``config.json`` + tokenizer), a head on a frozen text encoder (``transferkit.json`` naming the
encoder + the head's ``model.safetensors``: ``serving.encoder_predictor``), an exported ONNX graph
(``transferkit.json`` + ``model.onnx``: ``serving.onnx_predictor``) or a classical one
(``tfidf.json`` + ``tfidf.safetensors``).  Nothing is ever unpickled.  A neural model is written in transformers'
layout when its head has an exact transformers equivalent (``AutoModelFor...``/``pipeline`` then
load it with the same logits), else in a layout transformers refuses with a clear error: see
``transferkit.serving.hub_layout``.

Strategies that train a small delta on a frozen base (``lora``, ``bitfit``: a ``DeltaStrategy``)
save only the parameters they train plus a reference to the base model
(``base_model`` in ``transferkit.json``); loading rebuilds the base, re-applies the
strategy and loads the delta on top.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from transferkit.core.config import DataConfig, TrainingConfig, build_dataclass
from transferkit.core.contracts import Predictor
from transferkit.core.errors import UserError
from transferkit.core.machine import autocast, resolve_precision
from transferkit.core.run_files import META_FILE, model_dir, read_meta
from transferkit.data.collate import PaddingCollator
from transferkit.data.unknown_tokens import warn_unknown_tokens
from transferkit.models import load_backbone
from transferkit.modules.inference import PooledEncoder
from transferkit.serving.hub_layout import backbone_config, load_weights, plan_layout, read_state, write_model
from transferkit.strategies import delta_strategy
from transferkit.strategies.tfidf import TfidfPredictor
from transferkit.tasks import TASKS

logger = logging.getLogger("transferkit")
__all__ = ["META_FILE", "NeuralPredictor", "load_predictor", "merge_delta", "model_dir", "read_meta", "write_meta"]


class NeuralPredictor:
    """A task model + tokenizer that maps examples to the task's predictions (all through the task's hooks)."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, meta: dict[str, Any],
                 batch_size: int = TrainingConfig.eval_batch_size) -> None:
        self.model, self.tokenizer, self.max_length, self.meta, self.batch_size = model, tokenizer, max_length, meta, batch_size
        self.task = model.task
        self.labels = list(self.task.labels)
        self.collator = PaddingCollator(tokenizer.pad_token_id or 0)

    def featurize(self, examples: Any) -> list[dict[str, Any]]:
        return self.task.featurize(examples, self.tokenizer, self.max_length)

    def outputs(self, model: Any, features: list[dict[str, Any]], batch_size: int | None = None,
                precision: str | None = None) -> Any:
        """Raw outputs of ``model`` (this predictor's or one in training): logits, or generated ids.

        Under ``precision``, by default the run's ``training.mixed_precision`` (``meta["precision"]``) resolved
        on this machine: a model trained with ``auto`` on a bf16 CPU predicts in fp32 on one without."""
        device = next(model.parameters()).device.type
        with autocast(resolve_precision(precision or self.meta.get("precision", "no"), device), device):
            return self.task.infer(model, features, self.collator, batch_size or self.batch_size)

    def metrics_on(self, model: Any, features: list[dict[str, Any]], examples: Any, batch_size: int | None = None
                   ) -> dict[str, Any]:
        """The task's metrics of ``model`` on pre-featurised ``examples`` (per-epoch evaluation)."""
        predictions = self.task.decode(self.outputs(model, features, batch_size), features, examples, self.tokenizer)
        return self.task.metrics(predictions, self.task.references(examples))

    def for_task(self, name: str) -> NeuralPredictor:
        """The predictor of one extra task of a multi-task model (``heads`` in ``transferkit.json``), same encoder; or
        of one stage of a stream learned in the task setting (``stages``), over that stage's own labels: through the
        head it names (per-stage adapters: its adapter and head), else its rows of the shared output layer."""
        heads, stages = sorted(self.meta.get("heads", {})), self.meta.get("stages", {})
        if stages:
            if name not in stages:
                raise UserError(f"--task {name}: this run learned no stage '{name}' (its stages: {', '.join(stages)})")
            stage = stages[name]
            task = task_from_meta({**self.meta, "labels": stage["labels"]})
            model = self.model.for_task(stage["head"]) if "head" in stage else self.model.for_columns(task, stage["classes"])
        elif name in heads:
            model = self.model.for_task(name)
        else:
            have = ", ".join(["main (the default)", *heads])
            raise UserError(f"--task {name}: this model has no task '{name}' (it has: {have})")
        meta = {key: value for key, value in self.meta.items() if key != "stages"}
        return NeuralPredictor(model, self.tokenizer, self.max_length, meta, self.batch_size)

    def check_inputs(self, examples: Any, where: str) -> None:
        """Warn once when more than ``meta["unk_warning"]`` (the run's ``data.unk_warning``) of the tokens of
        ``examples`` (named ``where``) are the tokenizer's unknown token: text this model cannot read."""
        threshold = self.meta.get("unk_warning", DataConfig.unk_warning)
        warn_unknown_tokens(self.task.input_texts(examples), self.tokenizer, where,
                            self.meta.get("source_model", "the run's model"), threshold)

    def predict(self, examples: Any) -> Any:
        """Task-space predictions: class probabilities, tag sequences, answer spans, summaries.  A stream learned
        in the task setting predicts only with its stage named (:meth:`for_task`)."""
        if self.meta.get("stages"):
            raise UserError(f"this run learned a stream in the task setting: name the stage with --task (Python: "
                            f"load(run).for_task(NAME)), one of: {', '.join(self.meta['stages'])}")
        features = self.featurize(examples)
        return self.task.decode(self.outputs(self.model, features), features, examples, self.tokenizer)

    def text_encoder(self, fingerprint: str) -> PooledEncoder:
        """This model's pooled features as a frozen text encoder; ``fingerprint`` identifies the source weights."""
        key = {"model": fingerprint, "layer": self.model.layer, "pooling": self.task.config.pooling,
               "normalize": bool(self.task.config.normalize), "max_length": self.max_length}
        return PooledEncoder(self.model, self.featurize, self.collator, self.batch_size, key)

    def save(self, directory: str) -> None:
        """Weights, configs, tokenizer and ``transferkit.json``; in transformers' layout when the head maps onto one."""
        os.makedirs(directory, exist_ok=True)
        state = self.model.saved_state()
        delta_of = None
        if "base_model" in self.meta:  # only what the strategy trains; the base is referenced
            trained = {name for name, p in self.model.named_parameters() if p.requires_grad}
            state = {name: tensor for name, tensor in state.items() if name in trained}
            delta_of = self.meta["strategy"]
        layout = plan_layout(self.model, state, delta_of)
        write_model(directory, self.model.backbone.config, state, layout, self.labels)
        self.tokenizer.save_pretrained(directory)
        meta = {**self.meta, "kind": "neural", "labels": self.labels, "max_length": self.max_length,
                "layer": self.model.layer, "layout": layout.describe()}
        write_meta(directory, meta)

    @classmethod
    def load(cls, directory: str) -> NeuralPredictor:
        from transformers import AutoTokenizer

        meta = read_meta(directory)
        task = task_from_meta(meta)
        config = backbone_config(directory, meta)
        if "base_model" in meta:
            model = _delta_model(directory, meta, task, read_state(directory, meta))
        else:
            model = _with_heads(task.model_from_config(config, meta.get("mlp_hidden", 0)), meta)
            load_weights(model, directory, meta)
        model.layer = meta.get("layer", -1)
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(directory, config=config)  # config.json may be the guard
        return cls(model, tokenizer, meta["max_length"], meta)


def _delta_model(directory: str, meta: dict[str, Any], task: Any, state: dict[str, Any]) -> Any:
    """Base model (by reference) + the strategy's structure + the saved delta."""
    base = meta["base_model"]
    try:
        loaded = load_backbone(base["ref"], seq2seq=task.generative)
    except UserError as exc:
        raise UserError(f"{directory}: this {meta['strategy']} model stores only its trained delta; its base model "
                        f"'{base['ref']}' cannot be loaded ({exc})") from None
    if loaded.fingerprint != base.get("fingerprint"):
        logger.warning("base model %s differs from the one this %s model was trained on (fingerprint changed)",
                       base["ref"], meta["strategy"])
    strategy = delta_strategy(meta["strategy"], meta.get("strategy_options", {}), directory)
    model = strategy.prepare(_with_heads(task.build_model(loaded, meta.get("mlp_hidden", 0)), meta))
    missing, unexpected = model.load_state_dict(state, strict=False)
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    if unexpected or trained & set(missing):
        raise UserError(f"{directory}: model.safetensors does not fit {meta['strategy']} on {base['ref']} "
                        f"(unexpected: {sorted(unexpected)[:3]}, missing: {sorted(trained & set(missing))[:3]})")
    return model


def _with_heads(model: Any, meta: dict[str, Any]) -> Any:
    """``model`` with the further heads ``transferkit.json`` lists (a multi-task model's tasks, per-stage adapters'
    stages), each with its own task and labels, before any weights are loaded or a delta strategy prepares it."""
    for name, head in meta.get("heads", {}).items():
        model.add_head(task_from_meta(head), meta.get("mlp_hidden", 0), name=name)
    return model


def merge_delta(predictor: NeuralPredictor) -> NeuralPredictor:
    """Fold a delta model into full weights (LoRA/IA³: ``W = W₀ + ΔW``); the result needs no base model."""
    if "base_model" not in predictor.meta:
        raise UserError("this model already holds full weights: nothing to merge")
    strategy = delta_strategy(predictor.meta["strategy"], predictor.meta.get("strategy_options", {}), "this model")
    strategy.merge(predictor.model)
    meta = {k: v for k, v in predictor.meta.items() if k != "base_model"}
    meta["merged_from"] = predictor.meta["base_model"]["ref"]
    return NeuralPredictor(predictor.model, predictor.tokenizer, predictor.max_length, meta, predictor.batch_size)


def write_meta(directory: str, meta: dict[str, Any]) -> None:
    with open(os.path.join(directory, META_FILE), "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=2)


def task_from_meta(meta: dict[str, Any]) -> Any:
    """The task a saved model was trained for, with its options and labels."""
    task_cls = TASKS.get(meta["task"])
    return task_cls(build_dataclass(task_cls.Config, meta.get("task_options", {}), "model task"), meta["labels"])


def load_predictor(run_dir: str) -> Predictor:
    """Load the model of a finished run directory (or of its ``model/`` directory)."""
    directory = model_dir(run_dir)
    if not os.path.isdir(run_dir):
        raise UserError(f"run directory not found: {run_dir}")
    if os.path.exists(os.path.join(directory, "tfidf.json")):
        return TfidfPredictor.load(directory)
    if os.path.exists(os.path.join(directory, META_FILE)):
        kind = read_meta(directory).get("kind")
        if kind == "text_encoder":
            from transferkit.serving.encoder_predictor import EncoderPredictor

            return EncoderPredictor.load(directory)
        if kind == "onnx":  # written by transferkit export --format onnx
            from transferkit.serving.onnx_predictor import OnnxPredictor

            return OnnxPredictor.load(directory)
        return NeuralPredictor.load(directory)
    partial = run_dir.rstrip("/") + ".partial"
    hint = f"; an unfinished run is in {partial} (continue it with --resume)" if os.path.isdir(partial) else ""
    raise UserError(f"{run_dir} is not a transferkit run (no model/{META_FILE} or model/tfidf.json){hint}")
