"""``OnnxPredictor``: a run's model exported to ONNX, run by onnxruntime with the task's own hooks.

``predict(examples)`` = ``task.decode(session(task.featurize(examples)))``: the same tokenisation, the
same length-sorted batches with dynamic padding (``modules.inference``) and the same decoding as the
PyTorch model, only the forward pass ``logits = f(input_ids, attention_mask[, token_type_ids])`` runs
in onnxruntime.  The model directory (``model/`` of an exported run) holds:

* ``model.onnx``: the graph, inputs ``input_ids``/``attention_mask`` (+ ``token_type_ids`` when the
  tokenizer gives them), (batch, sequence) int64 with dynamic axes; output ``logits``;
* ``transferkit.json``: ``kind: onnx``, the task, its options and labels, ``max_length``, the inputs,
  ``quantize`` (``none`` or ``int8``: weights as int8, activations quantized per batch);
* the tokenizer, ``backbone_config.json`` and a guard ``config.json`` that transformers refuses;
* ``parity.json``: agreement with the PyTorch model measured at export (``serving.onnx_export``).

Loading needs only ``onnxruntime`` (no ``onnx``/``onnxscript``); nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from transferkit.core.config import DataConfig
from transferkit.core.errors import UserError
from transferkit.data.collate import PaddingCollator
from transferkit.data.unknown_tokens import warn_unknown_tokens
from transferkit.modules.inference import run_batches, run_ragged
from transferkit.serving.hub_layout import BACKBONE_CONFIG, guard_config
from transferkit.serving.predictor import read_meta, task_from_meta, write_meta

ONNX_FILE = "model.onnx"
REASON = "it is an ONNX graph for onnxruntime (transferkit export --format onnx), not transformers weights"


def onnx_session(model: bytes | str, threads: int | None = None) -> Any:
    """An onnxruntime CPU session on ``model`` (bytes or a path): all graph optimisations, few threads, quiet."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("running an ONNX model needs onnxruntime: pip install 'transferkit[export]'") from None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    options.log_severity_level = 3  # errors only: no per-node placement chatter
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxPredictor:
    """An exported task model: ``featurize`` and ``decode`` are the task's, the forward pass is onnxruntime's.

    Args:
        model: the serialized ONNX graph (``model.onnx``'s bytes).
        tokenizer: the run's tokenizer.
        config: the backbone's transformers config (saved as ``backbone_config.json``).
        meta: ``transferkit.json`` (task, task options, labels, max_length, inputs, quantize).
    """

    def __init__(self, model: bytes, tokenizer: Any, config: Any, meta: dict[str, Any], batch_size: int = 64) -> None:
        self.model, self.tokenizer, self.config, self.batch_size = model, tokenizer, config, batch_size
        self.meta = {**meta, "kind": "onnx"}
        self.task = task_from_meta(self.meta)
        self.labels = list(self.task.labels)
        self.max_length = int(meta["max_length"])
        self.inputs = list(meta["inputs"])
        self.collator = PaddingCollator(tokenizer.pad_token_id or 0)
        self.session = onnx_session(model)

    def featurize(self, examples: Any) -> list[dict[str, Any]]:
        return self.task.featurize(examples, self.tokenizer, self.max_length)

    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One padded batch through the graph: (batch, num_labels) or (batch, seq, num_labels) logits."""
        feed = {name: batch[name].numpy() for name in self.inputs}  # int64, zero-copy views
        return torch.from_numpy(self.session.run(["logits"], feed)[0])

    def outputs(self, features: list[dict[str, Any]]) -> Any:
        """Logits in input order, shaped as ``task.infer`` gives them: stacked (n, num_labels) for pooled
        heads, one (length_i, num_labels) array per feature for per-token heads."""
        if self.task.feature_kind == "tokens":
            return run_ragged(self._logits, features, self.collator, self.batch_size)
        return run_batches(self._logits, features, self.collator, self.batch_size)

    def predict(self, examples: Any) -> Any:
        """Task-space predictions (class probabilities, tag sequences), as the PyTorch model gives them."""
        features = self.featurize(examples)
        return self.task.decode(self.outputs(features), features, examples, self.tokenizer)

    def check_inputs(self, examples: Any, where: str) -> None:
        """Warn once when too many tokens of ``examples`` are ``[UNK]`` (the run's ``data.unk_warning``)."""
        threshold = self.meta.get("unk_warning", DataConfig.unk_warning)
        warn_unknown_tokens(self.task.input_texts(examples), self.tokenizer, where,
                            self.meta.get("source_model", "the run's model"), threshold)

    def save(self, directory: str) -> None:
        """``model.onnx``, the tokenizer, the backbone config, a guard ``config.json`` and ``transferkit.json``."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, ONNX_FILE), "wb") as handle:
            handle.write(self.model)
        self.config.to_json_file(os.path.join(directory, BACKBONE_CONFIG))
        with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as handle:
            json.dump(guard_config(REASON), handle, indent=2)
        self.tokenizer.save_pretrained(directory)
        write_meta(directory, {**self.meta, "labels": self.labels,
                               "layout": {"format": "onnx", "file": ONNX_FILE, "reason": REASON}})

    @classmethod
    def load(cls, directory: str) -> OnnxPredictor:
        from transformers import AutoConfig, AutoTokenizer

        meta = read_meta(directory)
        path = os.path.join(directory, ONNX_FILE)
        if not os.path.isfile(path):
            raise UserError(f"{directory}: an ONNX model directory without {ONNX_FILE}: export the run again")
        with open(path, "rb") as handle:
            model = handle.read()
        config = AutoConfig.from_pretrained(os.path.join(directory, BACKBONE_CONFIG))
        tokenizer = AutoTokenizer.from_pretrained(directory, config=config)  # config.json is the guard
        return cls(model, tokenizer, config, meta)

