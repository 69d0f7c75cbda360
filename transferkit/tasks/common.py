"""``EncoderTask``: what the tasks that put a head on an encoder share (classification, NER, QA).

The hooks here are the ``Task`` contract's defaults for an encoder + head model: build it,
rebuild it from a saved config, run batched inference, and no transformers equivalent unless
the task says so.  Each task overrides what is its own.
"""

from __future__ import annotations

from typing import Any, ClassVar

from transferkit.core.contracts import FeatureKind
from transferkit.core.errors import UserError
from transferkit.modules.inference import run_batches, run_ragged
from transferkit.modules.task_model import TaskModel


class EncoderTask:
    """Defaults of the ``Task`` hooks for an encoder + task head (``TaskModel``)."""

    name: ClassVar[str]
    feature_kind: ClassVar[FeatureKind] = "pooled"
    generative: ClassVar[bool] = False
    """True when the task needs a whole encoder-decoder LM (the source is loaded as one when it is)."""
    config: Any
    labels: list[str]

    def build_head(self, backbone: Any, mlp_hidden: int = 0) -> Any:
        """This task's head on ``backbone``'s states (``backbone.config.hidden_size`` wide); ``mlp_hidden`` hidden
        units where the head can have them.  ``TaskModel`` builds every head through it."""
        raise NotImplementedError(f"task '{self.name}' defines no build_head")

    def build_model(self, loaded: Any, mlp_hidden: int = 0) -> TaskModel:
        """The loaded source's backbone + this task's head."""
        return TaskModel.build(loaded.backbone, self, mlp_hidden)

    def model_from_config(self, config: Any, mlp_hidden: int = 0) -> TaskModel:
        """The saved architecture with empty weights (a run's model directory is loaded into it)."""
        from transformers import AutoModel

        return TaskModel.build(AutoModel.from_config(config), self, mlp_hidden)

    def infer(self, model: Any, features: list[dict[str, Any]], collator: Any, batch_size: int) -> Any:
        """Logits of ``model`` on features: (n, num_labels), or one (length_i, outputs) array per window
        for per-token tasks (padding cut off)."""
        model.eval()
        device = next(model.parameters()).device
        if self.feature_kind == "tokens":
            return run_ragged(lambda batch: model(batch)["logits"], features, collator, batch_size, device)
        return run_batches(lambda batch: model(batch)["logits"], features, collator, batch_size, device)

    def data_summary(self, examples: Any) -> dict[str, Any]:
        """Facts about the training data for the model card (none beyond its size by default)."""
        return {}

    def present(self, predictions: Any) -> list[Any]:
        """Predictions as a user reads them (labels, tag lists, answers)."""
        return list(predictions)

    def probabilities(self, predictions: Any) -> Any:
        """Class probabilities of decoded predictions; tasks without classes have none."""
        raise UserError(f"task '{self.name}' predicts no class probabilities: use predict()")

    def transformers_head(self, model: Any) -> tuple[str, dict[str, str]] | None:
        """``(AutoModelFor... class name, {transferkit key prefix: transformers key prefix})`` when the model
        maps exactly onto a transformers model with a head, else None (it then cannot be loaded there)."""
        return None
