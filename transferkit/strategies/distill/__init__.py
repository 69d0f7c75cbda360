"""``distill``: knowledge distillation into a smaller student (Hinton et al. 2015; DistilBERT, Sanh et al. 2019).

The run's ``teacher`` is a finished run of the same task.  Its logits ``t`` (and, with
``hidden_weight > 0``, its features ``h_t``) are computed once per distinct training text before
training (:mod:`.teacher`, cached on disk like frozen-encoder features),
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

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Fitted, Losses, RunContext
from transferkit.core.errors import UserError
from transferkit.core.run_files import check_finished_run
from transferkit.data.sources import SingleSource, ZippedSources
from transferkit.models.layers import num_layers, spaced_layers, truncate_layers
from transferkit.models.loading import LoadedModel
from transferkit.modules.distillation import DistillationLoss, HiddenStateLoss, distillation_objective
from transferkit.strategies.common import auxiliary_groups, set_trainable
from transferkit.strategies.distill.teacher import attach_teacher, load_teacher
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

    def check(self, task_cls: type, config: Any) -> None:
        """The base checks, and a teacher that is a finished run of this task."""
        super().check(task_cls, dataclasses.replace(config, teacher=None))  # the base refuses any teacher
        if not config.teacher:
            raise UserError(f"strategy '{self.name}' learns from a teacher: set teacher: RUN_DIR "
                            "(a finished run of the same task, e.g. --set teacher=runs/finetune)")
        check_finished_run(config.teacher, task_cls.name, f"teacher {config.teacher}")

    def fit(self, ctx: RunContext) -> Fitted:
        """Teacher first (loading a run draws its head's init from torch's RNG, so it comes before the student),
        then the cut student, started from the teacher's weights where they fit, trained on its soft targets."""
        teacher = load_teacher(ctx)
        loaded = self.source_model(ctx)
        model, meta = self.task_model(ctx, loaded)
        draft = self.start_from(ctx, model, meta, loaded)
        student_init = self.init_from_teacher(model, teacher.predictor.model, loaded.info["student_layers"])
        meta["teacher"] = {"run": teacher.path, "fingerprint": teacher.fingerprint,
                           "student_init": student_init or "pretrained model"}
        if self.config.hidden_weight > 0:  # W: student width -> teacher width (identity when equal)
            width = model.backbone.config.hidden_size
            model.add_auxiliary("hidden", HiddenStateLoss(width, int(teacher.predictor.model.backbone.config.hidden_size)))
        built = self.complete(ctx, loaded, draft)
        features = self.features(ctx, built)
        for name, examples in {"train": ctx.splits.train, **ctx.sources()}.items():
            attach_teacher(ctx, teacher, self.teacher_outputs(), examples, features[name], built.predictor.tokenizer)
        fit = self.train(ctx, built, features, self.evaluator(ctx, built))
        return self.finish(ctx, built, fit)

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
        """What the teacher provides for every training row: logits, and features when ``hidden_weight > 0``."""
        return frozenset({"logits", "features"} if self.config.hidden_weight > 0 else {"logits"})

    def load_source(self, model_ref: str, train: Any, seq2seq: bool = False) -> LoadedModel:
        """The run's model with ``student_layers`` of its layers (evenly spaced, bottom layer first)."""
        loaded = super().load_source(model_ref, train, seq2seq)
        total = num_layers(loaded.backbone)
        keep = self._layer_count(total)
        if keep > total:
            raise UserError(f"strategy.student_layers={keep}: {model_ref} has only {total} layers")
        kept = spaced_layers(total, keep)
        if keep < total:
            try:
                truncate_layers(loaded.backbone, kept)
            except ValueError as exc:
                raise UserError(f"strategy.student_layers: {exc}; use all (keep the model whole)") from None
        loaded.info = {**loaded.info, "student_layers": kept, "teacher_layers": total}
        return loaded

    def init_from_teacher(self, model: Any, teacher: Any, kept: list[int]) -> str | None:
        """Embeddings, the kept layers (student layer i ← teacher layer ``kept[i]``) and the head, when they fit;
        returns what was copied, or None."""
        if self.config.init == "model":
            return None
        mapped = _mapped_state(teacher, kept)
        own = model.state_dict()
        fits = set(mapped) == {k for k in own if not k.startswith("auxiliary.")} and all(
            own[k].shape == v.shape for k, v in mapped.items())
        if not fits:
            if self.config.init == "teacher":
                raise UserError("strategy.init=teacher: the teacher's encoder does not have the student's architecture "
                                "(set model to the teacher's source model, or init: model)")
            return None
        model.load_state_dict(mapped, strict=False)
        return f"teacher layers {kept}, embeddings and head"

    def prepare(self, model: Any) -> Any:
        """Fine-tuning's trainable groups, plus the hidden-state projection (``fit`` adds it) when there is one."""
        super().prepare(model)
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
