"""``adapters``: a LoRA adapter and a head per stage on one frozen encoder (per-task adapters, "AdapterCL": Madotto
et al. 2021, "Continual Learning in Task-Oriented Dialogue Systems"; LoRA: Hu et al. 2022, "LoRA: Low-Rank Adaptation
of Large Language Models").

Stage ``t`` trains only parameters of its own: a low-rank update of every adapted projection ``W₀`` of the frozen
encoder and a classifier over the stage's own labels,

    h = W₀x + (α/r)·B_t A_t x,        p(y | x, t) = softmax(U_t · pool(h) + c_t)_y,   y ∈ labels of stage t,

with ``A_t ∈ ℝ^{r×d}``, ``B_t ∈ ℝ^{k×r}`` and ``B_t = 0`` at the start (the stage begins at the pretrained encoder),
minimising the stage's cross-entropy; the optimizer holds nothing else.  Predicting stage ``i`` activates adapter ``i``
and head ``i``, which no later stage touches, so ``R[t, i] = R[i, i]`` for every ``t ≥ i``: no forgetting by
construction (BWT = 0), and no transfer between stages either.  The price: the stage is named at prediction
(``continual.setting: task``, ``predict --task NAME``; Madotto et al. pick the adapter by its perplexity instead) and
``r·(d + k)`` weights per adapted projection per stage.  ``r``, ``α``, dropout and the adapted projections are
``lora``'s.

The saved run holds a reference to the base model and every stage's adapter and head (``heads`` and ``stages`` in
``transferkit.json``), in safetensors; it cannot be merged into one model (one base, T adapters).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import nn

from transferkit.core.config import option
from transferkit.core.contracts import RunContext, Stream
from transferkit.core.errors import UserError
from transferkit.data.sources import SingleSource
from transferkit.models.loading import LoadedModel
from transferkit.modules.task_model import TaskModel
from transferkit.strategies.common import optimizer_groups, set_trainable
from transferkit.strategies.continual.plan import ContinualStrategy, Memory, stage_name, stream_of
from transferkit.strategies.continual.task_setting import own_examples, stage_metrics
from transferkit.strategies.lora import Lora, LoraConfig
from transferkit.strategies.neural import Built, DeltaStrategy

ALONE = "main"
"""The one adapter of a model with no stage heads (a contract check prepares a bare task model): its primary head's."""


@dataclass
class AdaptersConfig:
    r: int = option(LoraConfig.r, "LoRA rank r of each stage's update B·A (as lora)")
    alpha: float = option(LoraConfig.alpha, "LoRA scaling: each update is multiplied by alpha / r (as lora)")
    dropout: float = option(LoraConfig.dropout, "dropout on the LoRA input (as lora)")
    target_modules: list[str] | None = option(
        None, "module names to adapt (suffix match, e.g. [query, value]); default: the architecture's attention "
              "projections (as lora)")


def adapter_key(t: int) -> str:
    """The name of stage ``t``'s adapter and head inside the model (stage names may be any string)."""
    return f"stage_{t + 1}"


class Adapters(ContinualStrategy, DeltaStrategy):
    """A fresh LoRA adapter and head per stage on the frozen encoder; stage ``i`` predicts through its own."""

    name: ClassVar[str] = "adapters"
    Config: ClassVar[type] = AdaptersConfig
    training_defaults: ClassVar[dict[str, Any]] = {**Lora.training_defaults, "epochs": 1}

    def check(self, task_cls: type, config: Any) -> None:
        super().check(task_cls, config)
        if config.continual.setting != "task":
            raise UserError(f"strategy '{self.name}' trains one adapter per stage and needs the stage id at "
                            f"prediction: set continual.setting: task (it is {config.continual.setting})")
        if config.init_from:
            raise UserError(f"init_from {config.init_from}: strategy '{self.name}' adds its adapters to the frozen "
                            "source model (model); start from no run")

    def check_task(self, task_cls: type) -> None:
        c = self.config
        if c.r < 1 or c.alpha <= 0 or not 0 <= c.dropout < 1:
            raise UserError(f"strategy.r={c.r}, alpha={c.alpha}, dropout={c.dropout}: use r >= 1, alpha > 0 and "
                            "dropout in [0, 1)")

    # ---- the model -----------------------------------------------------------------------------
    def task_model(self, ctx: RunContext, loaded: LoadedModel) -> tuple[Any, dict[str, Any]]:
        """The task model plus a head per stage over the stage's own labels (``heads``, named by ``adapter_key``)."""
        model, meta = super().task_model(ctx, loaded)
        meta["heads"] = {}
        for t, stage in enumerate(stream_of(ctx).stages):
            key, labels = adapter_key(t), meta["stages"][stage.name]["labels"]
            model.add_head(type(ctx.task)(ctx.task.config, labels), self.mlp_hidden, name=key)
            meta["heads"][key] = {"task": ctx.task.name, "task_options": dataclasses.asdict(ctx.task.config),
                                  "labels": labels}
            meta["stages"][stage.name]["head"] = key
        return model, meta

    def prepare(self, model: Any) -> StageAdapters:
        """Freeze everything; a LoRA adapter per stage head (peft's named adapters); every adapter and stage head is
        trainable, i.e. part of the saved delta (what a stage trains is chosen by ``param_groups``)."""
        import peft

        set_trainable(list(model.named_parameters()), False)
        names = list(model.heads) or [ALONE]
        config = Lora(LoraConfig(r=self.config.r, alpha=self.config.alpha, dropout=self.config.dropout,
                                 target_modules=self.config.target_modules)).peft_config(model.backbone)
        backbone = peft.get_peft_model(model.backbone, copy.deepcopy(config), adapter_name=names[0])
        owned = {names[0]: [name for name, p in backbone.named_parameters() if p.requires_grad]}
        for key in names[1:]:
            known = {name for name, _ in backbone.named_parameters()}
            backbone.add_adapter(key, copy.deepcopy(config))
            owned[key] = [name for name, _ in backbone.named_parameters() if name not in known]
        model.backbone = backbone
        staged = StageAdapters(model, owned)
        adapters, heads = staged.stage_parameters()
        set_trainable(adapters + heads, True)
        activate(backbone, names[0])
        return staged

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float,
                     weight_decay: float) -> list[dict[str, Any]]:
        """One stage's adapter and head (``model`` is a stage's :class:`AdapterView`; a bare prepared model trains
        its one adapter and head)."""
        adapter, head = model.stage_parameters()
        return optimizer_groups([("adapter", adapter), ("head", head)],
                                {"adapter": learning_rate, "head": head_learning_rate}, weight_decay)

    def callbacks(self) -> list[Any]:
        return []

    def merge(self, model: Any) -> Any:
        raise UserError(f"strategy '{self.name}' keeps one LoRA adapter per stage on one base model: they cannot be "
                        "merged into one set of weights (predict with --task NAME instead)")

    # ---- the plan ------------------------------------------------------------------------------
    def learn(self, ctx: RunContext, built: Built, stream: Stream, t: int, memory: Memory) -> tuple[Any, Memory]:
        """Stage ``t``'s adapter and head on its examples, labelled among its own classes; nothing else trains."""
        stage = stream.stages[t]
        view = built.model.for_task(adapter_key(t))
        train = built.predictor.featurize(own_examples(stage.train, stage.classes))
        eval_examples = own_examples(stage.eval, stage.classes)
        eval_features = built.predictor.featurize(eval_examples)
        batches = SingleSource.from_config(train, built.predictor.collator, ctx.config.training)
        evaluate = lambda model: stage_metrics(built.predictor, model, eval_features, eval_examples)  # noqa: E731
        return ctx.train(self, view, batches, evaluate, stage=stage_name(t)), memory

    def stage_logits(self, built: Built, stream: Stream, i: int, features: list[dict[str, Any]]) -> np.ndarray:
        """Stage ``i``'s adapter and head on its examples, their logits in its classes' columns (−∞ elsewhere)."""
        classes = stream.stages[i].classes
        own = np.asarray(built.predictor.outputs(built.model.for_task(adapter_key(i)), features), dtype=np.float32)
        logits = np.full((len(features), len(built.predictor.labels)), -np.inf, dtype=np.float32)
        logits[:, classes] = own.reshape(len(features), len(classes))
        return logits


class StageAdapters(TaskModel):
    """A task model whose frozen backbone carries a LoRA adapter per stage (peft: one active at a time) and whose
    ``heads`` hold a head per stage; ``for_task(key)`` is that stage's view.  ``owned`` names each adapter's
    parameters in the backbone."""

    def __init__(self, model: TaskModel, owned: dict[str, list[str]]) -> None:
        super().__init__(model.backbone, model.head, model.task, model.layer)
        self.heads, self.tasks, self.owned = model.heads, model.tasks, owned

    def for_task(self, name: str) -> AdapterView:
        return AdapterView(self, name)

    def stage_parameters(self) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
        """Every adapter's parameters and every stage head's (the primary head's when there is no stage head)."""
        params = dict(self.backbone.named_parameters())
        adapters = [(f"backbone.{name}", params[name]) for names in self.owned.values() for name in names]
        heads = self.heads.named_parameters(prefix="heads") if len(self.heads) else self.head.named_parameters(prefix="head")
        return adapters, list(heads)


class AdapterView(TaskModel):
    """One stage of :class:`StageAdapters`: the shared backbone with the stage's adapter active, and the stage's
    head and task (modules shared, not copied)."""

    def __init__(self, model: StageAdapters, name: str) -> None:
        super().__init__(model.backbone, model.heads[name], model.tasks[name], model.layer)
        self.adapter, self.owned = name, model.owned[name]

    def hidden_states(self, batch: dict[str, Any]) -> Any:
        activate(self.backbone, self.adapter)
        return super().hidden_states(batch)

    def stage_parameters(self) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
        """This stage's adapter parameters and its head's."""
        params = dict(self.backbone.named_parameters())
        return [(f"backbone.{name}", params[name]) for name in self.owned], list(self.head.named_parameters(prefix="head"))


def activate(backbone: Any, name: str) -> None:
    """Make adapter ``name`` the one the forward pass adds, leaving what is trainable as it was (peft's
    ``set_adapter`` freezes the other adapters, which stay part of the saved delta)."""
    if backbone.active_adapter == name:
        return
    trainable = [p for p in backbone.parameters() if p.requires_grad]
    backbone.set_adapter(name)
    for p in trainable:
        p.requires_grad_(True)
