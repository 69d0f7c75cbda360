"""``ewc``: online elastic weight consolidation (Kirkpatrick et al. 2017, "Overcoming catastrophic forgetting in neural
networks"; the online form of Schwarz et al. 2018, "Progress & Compress").

After stage ``t`` the diagonal of the empirical Fisher information of the trained weights ``θ_t`` is estimated on
``fisher_samples`` of its examples, one example at a time,

    F_t = 1/N Σ_n (∂ log p(y_n | x_n; θ) / ∂θ)²  at θ = θ_t,

and folded into a running estimate ``F ← γ F + F_t`` with anchor ``θ* = θ_t``.  Every later stage minimises

    L(θ) = L_task(θ) + λ/2 · Σ_i F_i (θ_i − θ*_i)²,

a quadratic pull that is strong on the weights earlier stages relied on and free elsewhere.  ``F`` and ``θ*`` are the
memory the plan saves with each stage (frozen weights, e.g. a large vocabulary's embeddings, carry none).
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
from transferkit.strategies.continual.plan import ContinualStrategy, Memory, StageObjective
from transferkit.strategies.continual.task_setting import stage_features, stage_loss
from transferkit.strategies.finetune import FinetuneConfig
from transferkit.strategies.neural import Built


@dataclass
class EwcConfig(FinetuneConfig):
    ewc_lambda: float = option(1e4, "λ: strength of the quadratic penalty (not tuned; a grid axis)")
    gamma: float = option(1.0, "γ: decay of earlier stages' Fisher in the online estimate (1 = sum them)")
    fisher_samples: int = option(256, "examples per stage for the Fisher estimate (one backward pass each)")


class Ewc(ContinualStrategy):
    """Fine-tuning on each stage with a Fisher-weighted pull towards the weights earlier stages left."""

    name: ClassVar[str] = "ewc"
    Config: ClassVar[type] = EwcConfig

    def check_task(self, task_cls: type) -> None:
        c = self.config
        if c.ewc_lambda < 0 or not 0 <= c.gamma <= 1 or c.fisher_samples < 1:
            raise UserError(f"strategy.ewc_lambda={c.ewc_lambda}, gamma={c.gamma}, fisher_samples={c.fisher_samples}: "
                            "use λ >= 0, γ in [0, 1] and at least 1 sample")

    def learn(self, ctx: RunContext, built: Built, stream: Stream, t: int, memory: Memory) -> tuple[Any, Memory]:
        stage, training = stream.stages[t], ctx.config.training
        features = stage_features(built.predictor, stream, t, stage.train)
        batches = SingleSource.from_config(features, built.predictor.collator, training)
        objective = self if not memory else Penalised(self, memory, self.config.ewc_lambda)
        fit = self.train_stage(ctx, built, stream, t, objective, batches)
        sample = np.random.default_rng([training.seed, t]).permutation(len(stage.train))[: self.config.fisher_samples]
        fisher = diagonal_fisher(built, stage_features(built.predictor, stream, t, stage.train.subset(sample.tolist())))
        return fit, consolidate(memory, fisher, built.model, self.config.gamma)


class Penalised(StageObjective):
    """The strategy's objective plus ``λ/2 Σ F (θ − θ*)²`` (the Trainer's ``Objective``)."""

    def __init__(self, strategy: Ewc, memory: Memory, strength: float) -> None:
        super().__init__(strategy)
        self.memory, self.strength = memory, strength

    def loss(self, model: Any, batch: Batch) -> Losses:
        task = self.strategy.loss(model, batch)
        penalty = None
        for name, param in model.named_parameters():
            if f"fisher.{name}" in self.memory:
                fisher, anchor = self.memory[f"fisher.{name}"], self.memory[f"anchor.{name}"]
                term = (fisher.to(param.device) * (param - anchor.to(param.device)) ** 2).sum()
                penalty = term if penalty is None else penalty + term
        if penalty is None:
            return task
        penalty = 0.5 * self.strength * penalty
        return Losses(task.total + penalty, {**task.parts, "ewc": float(penalty.detach())})


def diagonal_fisher(built: Built, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Mean squared gradient of each trainable weight's log-likelihood of the gold label, one example at a time."""
    model, collator = built.model, built.predictor.collator
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    totals = {name: torch.zeros_like(p) for name, p in params.items()}
    model.eval()  # no dropout: the Fisher of the model as it predicts
    for feature in features:
        model.zero_grad(set_to_none=True)
        batch = collator([feature])
        stage_loss(model, batch)[1].backward()  # −log p(y | x) of one example (task setting: over its stage's classes)
        for name, p in params.items():
            if p.grad is not None:
                totals[name] += p.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    return {name: total / max(len(features), 1) for name, total in totals.items()}


def consolidate(memory: Memory, fisher: dict[str, torch.Tensor], model: Any, gamma: float) -> Memory:
    """``F ← γ F + F_t`` and ``θ* ← θ_t`` for every trainable weight."""
    result: Memory = {}
    weights = dict(model.named_parameters())
    for name, value in fisher.items():
        previous = memory.get(f"fisher.{name}")
        result[f"fisher.{name}"] = value if previous is None else gamma * previous + value
        result[f"anchor.{name}"] = weights[name].detach().clone()
    return result
