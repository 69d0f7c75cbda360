"""``lwf``: learning without forgetting (Li & Hoiem 2016, "Learning without Forgetting").

Before stage ``t`` trains, the model as earlier stages left it records its logits ``o`` on the new stage's examples.
Training then fits the new labels while keeping those responses on the classes it already knew:

    L = CE(y, s) + λ · T² · KL(softmax(o_old / T) ‖ softmax(s_old / T))

with ``s`` the current logits and ``_old`` the columns of the classes of earlier stages (every class in the
``domain`` setting).  In the ``task`` setting every earlier stage's head keeps its own responses, Li & Hoiem's
multi-head form: ``λ · T² · Σ_{j<t} KL(softmax(o_j / T) ‖ softmax(s_j / T))`` over each earlier stage ``j``'s
columns, and ``CE`` runs over stage ``t``'s classes only.  Li & Hoiem use ``λ = 1`` and ``T = 2``, the defaults here.  No examples and no extra weights are
kept: the previous model is the saved weights of the last finished stage, so a resumed run records the same ``o``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Losses, RunContext, Stream
from transferkit.core.errors import UserError
from transferkit.data.sources import SingleSource
from transferkit.modules.distillation import DistillationLoss
from transferkit.strategies.continual.plan import ContinualStrategy, Memory, StageObjective, seen_classes
from transferkit.strategies.continual.task_setting import stage_features, stage_loss
from transferkit.strategies.finetune import FinetuneConfig
from transferkit.strategies.neural import Built


@dataclass
class LwfConfig(FinetuneConfig):
    lwf_lambda: float = option(1.0, "λ: weight of the distillation term (Li & Hoiem 2016: 1)")
    temperature: float = option(2.0, "T of the softened distributions (Li & Hoiem 2016: 2)")


class Lwf(ContinualStrategy):
    """Fine-tuning on each stage while distilling the previous model's responses on the old classes."""

    name: ClassVar[str] = "lwf"
    Config: ClassVar[type] = LwfConfig

    def check_task(self, task_cls: type) -> None:
        if self.config.lwf_lambda < 0 or self.config.temperature <= 0:
            raise UserError(f"strategy.lwf_lambda={self.config.lwf_lambda}, temperature={self.config.temperature}: "
                            "use λ >= 0 and T > 0")

    def learn(self, ctx: RunContext, built: Built, stream: Stream, t: int, memory: Memory) -> tuple[Any, Memory]:
        features = stage_features(built.predictor, stream, t, stream.stages[t].train)
        objective: Any = self
        if t > 0:
            logits = np.asarray(built.predictor.outputs(built.model, features), dtype=np.float32)
            features = [{**feature, "teacher_logits": row} for feature, row in zip(features, logits, strict=True)]
            objective = Distilling(self, old_heads(stream, t), self.config.lwf_lambda, self.config.temperature)
        batches = SingleSource.from_config(features, built.predictor.collator, ctx.config.training)
        return self.train_stage(ctx, built, stream, t, objective, batches), memory


def old_heads(stream: Stream, t: int) -> list[list[int]] | None:
    """The columns whose responses stage ``t`` keeps, in groups each softened by a softmax of its own: every column
    (None: ``domain``), the classes of stages before ``t`` (``class``: one head), each earlier stage's own (``task``)."""
    if stream.setting == "domain":
        return None
    if stream.setting == "task":
        return [list(stage.classes) for stage in stream.stages[:t]]
    return [seen_classes(stream, t - 1)]


class Distilling(StageObjective):
    """The strategy's objective plus the LwF term on the old heads' columns (the Trainer's ``Objective``)."""

    def __init__(self, strategy: Lwf, heads: list[list[int]] | None, strength: float, temperature: float) -> None:
        super().__init__(strategy)
        self.strength = strength
        self.heads = None if heads is None else [torch.tensor(head, dtype=torch.long) for head in heads]
        self.distillation = DistillationLoss(temperature)

    def loss(self, model: Any, batch: Batch) -> Losses:
        outputs, task = stage_loss(model, batch)
        student, teacher = outputs["logits"], batch["teacher_logits"]
        if self.heads is None:
            kd = self.distillation(student, teacher)
        else:
            kd = sum(self.distillation(student[:, head], teacher[:, head]) for head in self.heads)
        kd = self.strength * kd
        return Losses(task + kd, {"task": float(task.detach()), "lwf": float(kd.detach())})
