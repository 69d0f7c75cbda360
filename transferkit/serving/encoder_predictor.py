"""A task head on a frozen text encoder that is not a transformer (e.g. ``use-multilingual``).

``predict(texts)`` = ``decode(head(encode(texts)))``: the encoder maps texts to vectors
``z`` (n, dim) and the head gives ``softmax(W z + b)`` (or the MLP's logits).  The saved
``model/`` directory holds only what was fitted, never a pickle:

* ``model.safetensors``: the head's weights (``head.*``; the encoder has no torch weights);
* ``transferkit.json``: ``kind: text_encoder``, the task, the labels and ``text_encoder``:
  ``{ref, fingerprint}``, a reference to the encoder, rebuilt from the catalog on load (a warning
  when its fingerprint changed, e.g. another package version);
* ``config.json``: a guard transformers refuses with the reason (``hub_layout.guard_config``),
  so ``AutoModel...``/``pipeline`` and ``transferkit export --format transformers`` say no.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from safetensors.torch import save_file

from transferkit.core.config import TrainingConfig
from transferkit.core.errors import UserError
from transferkit.data.collate import PaddingCollator
from transferkit.models import load_text_encoder
from transferkit.serving.hub_layout import WEIGHTS, Layout, guard_config, load_weights
from transferkit.serving.predictor import NeuralPredictor, read_meta, task_from_meta, write_meta

logger = logging.getLogger("transferkit")


class EncoderPredictor(NeuralPredictor):
    """A frozen text encoder (``core.contracts.TextEncoder``) + a ``TaskModel`` whose head reads its vectors."""

    def __init__(self, model: Any, encoder: Any, meta: dict[str, Any],
                 batch_size: int = TrainingConfig.eval_batch_size) -> None:
        task = model.task
        if task.feature_kind != "pooled":
            raise UserError(f"{encoder.name} gives one vector per text: task '{task.name}' needs token states "
                            "(use a transformer such as minilm-l6)")
        if model.head.normalize:  # the head's pooling (and its normalisation) never sees this encoder's vectors
            raise UserError(f"task.normalize=true: {encoder.name} gives its own vectors, which the head uses as they "
                            "are; leave task.normalize unset or use a transformer such as minilm-l6")
        self.model, self.encoder, self.batch_size, self.task = model, encoder, batch_size, task
        self.meta = {**meta, "text_encoder": {"ref": encoder.name, "fingerprint": encoder.fingerprint}}
        self.tokenizer, self.max_length = None, 0
        self.labels = list(task.labels)
        self.collator = PaddingCollator(0)

    def featurize(self, examples: Any) -> list[dict[str, Any]]:
        """One ``{"features": z}`` row per example (with ``labels`` when the examples have them)."""
        vectors = self.encoder.encode(examples.texts, examples.text_pairs)  # (n, dim)
        rows = [{"features": vector} for vector in vectors]
        if examples.labels is not None:
            for row, label in zip(rows, examples.labels, strict=True):
                row["labels"] = label
        return rows

    def check_inputs(self, examples: Any, where: str) -> None:
        """Nothing to check: a sentence encoder has no unknown-token id to count (USE hashes unseen words)."""

    def text_encoder(self, fingerprint: str) -> Any:
        """The encoder itself (it carries its own fingerprint)."""
        return self.encoder

    def reason(self) -> str:
        return (f"its source {self.encoder.name} is a frozen text encoder, not a transformers model; "
                "only its head was trained")

    def save(self, directory: str) -> None:
        """The head's weights, a transformers guard config.json and ``transferkit.json`` naming the encoder."""
        os.makedirs(directory, exist_ok=True)
        save_file(self.model.saved_state(), os.path.join(directory, WEIGHTS))  # head.* only
        with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as handle:
            json.dump(guard_config(self.reason()), handle, indent=2)
        meta = {**self.meta, "kind": "text_encoder", "labels": self.labels, "layer": self.model.layer,
                "layout": Layout(None, reason=self.reason()).describe()}
        write_meta(directory, meta)

    @classmethod
    def load(cls, directory: str) -> EncoderPredictor:
        meta = read_meta(directory)
        reference = meta["text_encoder"]
        try:
            loaded = load_text_encoder(reference["ref"])
        except UserError as exc:
            raise UserError(f"{directory}: this model is a head on the text encoder '{reference['ref']}', "
                            f"which cannot be loaded ({exc})") from None
        if loaded.fingerprint != reference.get("fingerprint"):
            logger.warning("text encoder %s differs from the one this model was trained on (%s, now %s)",
                           reference["ref"], reference.get("fingerprint"), loaded.fingerprint)
        task = task_from_meta(meta)
        model = task.build_model(loaded, meta.get("mlp_hidden", 0))
        load_weights(model, directory, meta)
        model.layer = meta.get("layer", -1)
        model.eval()
        return cls(model, loaded.encoder, meta)
