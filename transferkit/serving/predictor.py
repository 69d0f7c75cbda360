"""Load a saved run's model and predict; the same objects save the model at the end of training.

A run's ``model/`` directory holds either a neural model (``transferkit.json`` +
``model.safetensors`` + backbone ``config.json`` + tokenizer) or a classical one
(``tfidf.json`` + ``tfidf.safetensors``).  Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from safetensors.torch import load_file, save_file

from transferkit.core.config import build_dataclass
from transferkit.core.contracts import Predictor, TextExamples
from transferkit.core.errors import UserError
from transferkit.data.collate import PaddingCollator
from transferkit.modules.task_model import TaskModel
from transferkit.strategies.tfidf import TfidfPredictor
from transferkit.tasks import TASKS
from transferkit.training.checkpoint import state_dict_for_saving
from transferkit.training.inference import run_batches

META_FILE = "transferkit.json"


class NeuralPredictor:
    """A ``TaskModel`` + tokenizer that maps examples to class probabilities."""

    def __init__(self, model: TaskModel, tokenizer: Any, max_length: int, meta: dict[str, Any], batch_size: int = 128) -> None:
        self.model, self.tokenizer, self.max_length, self.meta, self.batch_size = model, tokenizer, max_length, meta, batch_size
        self.task = model.task
        self.labels = list(self.task.labels)
        self.collator = PaddingCollator(tokenizer.pad_token_id or 0)

    def featurize(self, examples: TextExamples) -> list[dict[str, Any]]:
        return self.task.featurize(examples, self.tokenizer, self.max_length)

    def logits_of(self, model: Any, features: list[dict[str, Any]], batch_size: int | None = None) -> np.ndarray:
        """(n, num_labels) logits of ``model`` (this predictor's model or one in training) on features."""
        model.eval()
        device = next(model.parameters()).device
        return run_batches(lambda batch: model(batch)["logits"], features, self.collator,
                           batch_size or self.batch_size, device)

    def metrics_on(self, model: Any, features: list[dict[str, Any]], labels: Any, batch_size: int | None = None
                   ) -> dict[str, Any]:
        """The task's metrics of ``model`` on pre-featurised examples (per-epoch evaluation)."""
        return self.task.metrics(self.task.decode(self.logits_of(model, features, batch_size)), np.asarray(labels))

    def logits(self, examples: TextExamples) -> np.ndarray:
        return self.logits_of(self.model, self.featurize(examples))

    def predict_proba(self, examples: TextExamples) -> np.ndarray:
        return self.task.decode(self.logits(examples))

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.model.backbone.config.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        save_file(state_dict_for_saving(self.model), os.path.join(directory, "model.safetensors"))
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
        backbone = AutoModel.from_config(AutoConfig.from_pretrained(directory))
        model = TaskModel.build(backbone, task, meta.get("mlp_hidden", 0))
        model.layer = meta.get("layer", -1)
        model.load_state_dict(load_file(os.path.join(directory, "model.safetensors")))
        tokenizer = AutoTokenizer.from_pretrained(directory)
        return cls(model, tokenizer, meta["max_length"], meta)


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
