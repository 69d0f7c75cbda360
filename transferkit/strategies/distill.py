"""``distill``: knowledge distillation into a smaller student (Hinton et al. 2015; DistilBERT, Sanh et al. 2019).

The run's ``teacher`` is a finished run of the same task.  Its logits ``t`` (and, with
``hidden_weight > 0``, its features ``h_t``) are computed once per distinct training text before
training (:mod:`transferkit.experiments.distillation`, cached on disk like frozen-encoder features),
so a step costs one student pass.  The student minimises

    L = α · CE(y, s) + (1 − α) · T² · KL(softmax(t/T) ‖ softmax(s/T)) [+ β · MSE(W h_s, h_t)]

(:mod:`transferkit.modules.distillation`).  Unlabelled text in ``data.sources.unlabeled`` is extra
transfer data: its batches, zipped with the labelled ones, add only the distillation terms.

The student is the run's ``model`` cut to ``student_layers`` transformer layers spread evenly over
its depth (``half``: every other layer, DistilBERT's recipe); with ``init: teacher`` (``auto`` when
the teacher's encoder has the student's architecture) its embeddings, kept layers and head start as
the teacher's fine-tuned ones, layer ``i`` from teacher layer ``keep[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Losses
from transferkit.core.errors import UserError
from transferkit.data.sources import SingleSource, ZippedSources
from transferkit.models.layers import num_layers, spaced_layers, truncate_layers
from transferkit.models.loading import LoadedModel
from transferkit.modules.distillation import DistillationLoss, HiddenStateLoss, distillation_objective
from transferkit.strategies.common import auxiliary_groups, set_trainable
from transferkit.strategies.finetune import Finetune, FinetuneConfig

UNLABELED = "unlabeled"
"""The optional data source of unlabelled transfer text (``data.sources.unlabeled``)."""


@dataclass
class DistillConfig(FinetuneConfig):
    alpha: float = option(0.5, "α: weight of the cross-entropy on gold labels; 1 - α goes to the teacher's soft targets")
    temperature: float = option(2.0, "T: softmax temperature of the soft targets (the KL term is scaled by T²)")
    hidden_weight: float = option(0.0, "β: weight of MSE between student and teacher features (0 = logits only)")
    student_layers: str = option("half", "transformer layers the student keeps: half (every other layer), all, or a "
                                         "number k (k layers spread evenly over the model's depth)")
    init: Literal["auto", "teacher", "model"] = option(
        "auto", "start the student from the teacher's fine-tuned weights (teacher), from the pretrained model (model), "
                "or teacher when its encoder has the student's architecture (auto)")


class Distill(Finetune):
    """A smaller student trained on the teacher's soft targets (plus the gold labels)."""

    name: ClassVar[str] = "distill"
    supports: ClassVar[frozenset[str]] = frozenset({"classification", "token_classification"})
    Config: ClassVar[type] = DistillConfig
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 1e-4}

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.kept_layers: list[int] | None = None  # set by load_source
        self.teacher_width: int | None = None  # set by init_from_teacher

    def check_task(self, task_cls: type) -> None:
        c = self.config
        if not 0 <= c.alpha <= 1 or c.temperature <= 0 or c.hidden_weight < 0:
            raise UserError(f"strategy.alpha={c.alpha} must lie in [0, 1], strategy.temperature={c.temperature} be > 0 "
                            f"and strategy.hidden_weight={c.hidden_weight} >= 0")
        self._layer_count(12)  # validates the spelling of student_layers before any work

    def _layer_count(self, total: int) -> int:
        value = str(self.config.student_layers).strip().lower()
        if value == "half":
            return max(total // 2, 1)
        if value == "all":
            return total
        if not value.isdigit() or int(value) < 1:
            raise UserError(f"strategy.student_layers={self.config.student_layers!r}: use half, all or a number >= 1")
        return int(value)

    def teacher_outputs(self) -> frozenset[str]:
        return frozenset({"logits", "features"} if self.config.hidden_weight > 0 else {"logits"})

    def load_source(self, model_ref: str, train: Any, seq2seq: bool = False) -> LoadedModel:
        """The run's model with ``student_layers`` of its layers (evenly spaced, bottom layer first)."""
        loaded = super().load_source(model_ref, train, seq2seq)
        total = num_layers(loaded.backbone)
        keep = self._layer_count(total)
        if keep > total:
            raise UserError(f"strategy.student_layers={keep}: {model_ref} has only {total} layers")
        self.kept_layers = spaced_layers(total, keep)
        if keep < total:
            try:
                truncate_layers(loaded.backbone, self.kept_layers)
            except ValueError as exc:
                raise UserError(f"strategy.student_layers: {exc}; use all (keep the model whole)") from None
        loaded.info = {**loaded.info, "student_layers": self.kept_layers, "teacher_layers": total}
        return loaded

    def init_from_teacher(self, model: Any, teacher: Any) -> str | None:
        """Embeddings, the kept layers (student layer i ← teacher layer keep[i]) and the head, when they fit;
        notes the teacher's width for the hidden-state projection."""
        self.teacher_width = int(teacher.backbone.config.hidden_size)
        if self.config.init == "model" or self.kept_layers is None:
            return None
        mapped = _mapped_state(teacher, self.kept_layers)
        own = model.state_dict()
        fits = set(mapped) == {k for k in own if not k.startswith("auxiliary.")} and all(
            own[k].shape == v.shape for k, v in mapped.items())
        if not fits:
            if self.config.init == "teacher":
                raise UserError("strategy.init=teacher: the teacher's encoder does not have the student's architecture "
                                "(set model to the teacher's source model, or init: model)")
            return None
        model.load_state_dict(mapped, strict=False)
        return f"teacher layers {self.kept_layers}, embeddings and head"

    def prepare(self, model: Any) -> Any:
        super().prepare(model)
        if self.config.hidden_weight > 0:  # W: student width -> teacher width (identity when equal)
            width = model.backbone.config.hidden_size
            model.add_auxiliary("hidden", HiddenStateLoss(width, self.teacher_width or width))
            set_trainable(list(model.auxiliary.named_parameters()), True)
        return model

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list[dict]:
        groups = super().param_groups(model, learning_rate, head_learning_rate, weight_decay)
        return groups + auxiliary_groups(model, head_learning_rate, weight_decay)

    def batch_source(self, features: dict[str, list[dict[str, Any]]], collator: Any, config: Any) -> Any:
        labelled = SingleSource.from_config(features["train"], collator, config)
        if UNLABELED not in features:
            return labelled
        unlabelled = [{k: v for k, v in row.items() if k != "labels"} for row in features[UNLABELED]]
        extra = SingleSource.from_config(unlabelled, collator, config, config.seed + 1)
        return ZippedSources({"labelled": labelled, UNLABELED: extra})

    def loss(self, model: Any, batch: Batch) -> Losses:
        labelled = batch.get("labelled", batch)  # zipped with unlabelled text, or a plain batch
        outputs = model(labelled)
        ce = model.task.loss(outputs, labelled)
        kd = self._soft_loss(model, outputs, labelled)
        parts = {"ce": float(ce.detach()), "kd": float(kd.detach())}
        if UNLABELED in batch:
            extra = self._soft_loss(model, model(batch[UNLABELED]), batch[UNLABELED])
            kd = kd + extra
            parts["kd_unlabeled"] = float(extra.detach())
        return Losses(distillation_objective(ce, kd, self.config.alpha), parts)

    def _soft_loss(self, model: Any, outputs: dict[str, Any], batch: Batch) -> Any:
        """``T²·KL`` on the logits (per token under the attention mask for token tasks) [+ β·MSE on features]."""
        logits = outputs["logits"]
        mask = batch["attention_mask"] if logits.dim() == 3 else None  # per-token logits: (batch, seq, classes)
        width = logits.shape[1] if logits.dim() == 3 else None
        teacher = batch["teacher_logits"][:, :width] if width else batch["teacher_logits"]
        loss = DistillationLoss(self.config.temperature)(logits, teacher.to(logits.dtype), mask)
        if self.config.hidden_weight > 0:
            hidden = model.auxiliary["hidden"]
            target = batch["teacher_features"][:, :width] if width else batch["teacher_features"]
            loss = loss + self.config.hidden_weight * hidden(outputs["features"], target, mask)
        return loss


def _mapped_state(teacher: Any, keep: list[int]) -> dict[str, Any]:
    """The teacher's saved state renamed onto a student keeping layers ``keep``: ``encoder.layer.{keep[i]}`` → ``.{i}``;
    the teacher's other layers are left out."""
    position = {str(layer): str(index) for index, layer in enumerate(keep)}
    mapped = {}
    for key, value in teacher.saved_state().items():
        head, marker, rest = key.partition("encoder.layer.")
        if not marker:
            mapped[key] = value
            continue
        layer, _, tail = rest.partition(".")
        if layer in position:
            mapped[f"{head}{marker}{position[layer]}.{tail}"] = value
    return mapped
