"""The plan every continual strategy shares: learn the stages of ``data.stream`` one after another and, after each,
evaluate the model on every stage's test set: the accuracy matrix ``R`` of Lopez-Paz & Ranzato (2017, "Gradient
Episodic Memory for Continual Learning"), ``R[t, i]`` = accuracy on stage ``i``'s test set after stage ``t``.

    fit(ctx):  built = one task model, one head over every stage's labels (``Splits.labels``)
               b     = R before any training                 (``domain`` setting: the baseline of FWT)
               for stage t, after the last finished one:
                   fit, memory = learn(ctx, built, stream, t, memory)     the method: plain, replay, EWC, LwF, adapters
                   R[t] = accuracy on every stage's test set   (``class`` setting: argmax over the classes seen so far;
                                                                ``task``: over the stage's own, see ``.task_setting``)
                   save stage t: trainable weights, R[t], memory           (atomically: --resume continues after it)
               metrics.json's ``continual`` block: R, ACC, BWT, FWT (``evaluation.continual``)

A method overrides ``learn``; what it carries from stage to stage (a replay buffer, a Fisher matrix) is ``memory``,
a dict of tensors returned by one stage, given to the next and saved with each stage, never an attribute.  Within a
stage the Trainer checkpoints under the stage's name (``ctx.train(stage=...)``), so a run killed at any step resumes
at that stage and step and ends with the same ``R``.  One pass per stage (``training.epochs`` 1) is the default, the
single-pass protocol of d'Autume et al. (2019).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from transferkit.core.atomic import write_json_atomic
from transferkit.core.contracts import Batch, Fitted, Losses, RunContext, Stream
from transferkit.core.errors import UserError
from transferkit.data.sources import SingleSource
from transferkit.evaluation.continual import continual_summary, seen_accuracy
from transferkit.models.loading import LoadedModel
from transferkit.strategies.continual.task_setting import (
    StageScores,
    stage_features,
    stage_loss,
    stage_meta,
    stage_metrics,
)
from transferkit.strategies.finetune import Finetune
from transferkit.strategies.neural import Built

Memory = dict[str, torch.Tensor]
PROGRESS = "continual"


@dataclass
class StreamFit:
    """The Trainer results of every stage, as the run records them: their histories (each entry tagged with its
    stage), the steps they took; no checkpoint was chosen across stages (``best_step`` None)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    best_step: int | None = None

    def add(self, stage: str, fit: Any) -> None:
        self.history += [{**entry, "stage": stage} for entry in fit.history]
        self.steps += int(fit.steps)


class ContinualStrategy(Finetune):
    """Fine-tuning over a stream of stages; subclasses change what a stage trains on and its loss (``learn``)."""

    supports: ClassVar[frozenset[str]] = frozenset({"classification"})
    learns_streams: ClassVar[bool] = True
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 5e-5, "epochs": 1}

    def check(self, task_cls: type, config: Any) -> None:
        super().check(task_cls, config)
        if not config.data.stream:
            raise UserError(f"strategy '{self.name}' learns a stream of stages: set data.stream to a list of "
                            "{name, path, test} (see docs: continual learning)")

    # ---- the plan ------------------------------------------------------------------------------
    def fit(self, ctx: RunContext) -> Fitted:
        stream = stream_of(ctx)
        built = self.build(ctx, self.source_model(ctx))
        tests = [built.predictor.featurize(stage.test) for stage in stream.stages]
        progress = Progress(ctx.state_path(PROGRESS))
        rows, memory, record = progress.load(built.model)
        baseline = progress.baseline()
        if baseline is None and stream.setting == "domain":
            baseline = progress.save_baseline(self.accuracies(built, stream, tests, None))
        for t in range(len(rows), len(stream.stages)):
            fit, memory = self.learn(ctx, built, stream, t, memory)
            rows.append(self.accuracies(built, stream, tests, t))
            record.add(stream.stages[t].name, fit)
            progress.save(t, built.model, rows[-1], memory, record, ctx.state_path(stage_name(t)))
        return self.finished(built, stream, rows, baseline, record)

    def learn(self, ctx: RunContext, built: Built, stream: Stream, t: int, memory: Memory) -> tuple[Any, Memory]:
        """Train stage ``t`` (plain fine-tuning on its examples: ``sequential``); returns its fit and the memory the
        next stage gets."""
        features = stage_features(built.predictor, stream, t, stream.stages[t].train)
        batches = SingleSource.from_config(features, built.predictor.collator, ctx.config.training)
        return self.train_stage(ctx, built, stream, t, self, batches), memory

    def train_stage(self, ctx: RunContext, built: Built, stream: Stream, t: int, objective: Any, batches: Any) -> Any:
        """The Trainer on stage ``t``, evaluated on its eval split, checkpointing under the stage's name."""
        stage = stream.stages[t]
        eval_features = stage_features(built.predictor, stream, t, stage.eval)
        evaluate = lambda model: stage_metrics(built.predictor, model, eval_features, stage.eval)  # noqa: E731
        return ctx.train(objective, built.model, batches, evaluate, stage=stage_name(t))

    def loss(self, model: Any, batch: Batch) -> Losses:
        """The task's loss (in the task setting over each example's own stage's classes: ``.task_setting``)."""
        loss = stage_loss(model, batch)[1]
        return Losses(total=loss, parts={"task": float(loss.detach())})

    def task_model(self, ctx: RunContext, loaded: LoadedModel) -> tuple[Any, dict[str, Any]]:
        """The task model; in the task setting ``transferkit.json`` lists the stages (``predict --task NAME``)."""
        model, meta = super().task_model(ctx, loaded)
        stream = stream_of(ctx)
        if stream.setting == "task":
            meta["stages"] = stage_meta(stream, ctx.splits.labels)
        return model, meta

    def accuracies(self, built: Built, stream: Stream, tests: list[Any], t: int | None) -> list[float]:
        """Accuracy on every stage's test set after stage ``t`` (None: before any, or after all at once), argmax over
        the classes :func:`allowed_classes` names."""
        return [seen_accuracy(self.stage_logits(built, stream, i, features), np.asarray(stage.test.labels),
                              allowed_classes(stream, t, i))
                for i, (stage, features) in enumerate(zip(stream.stages, tests, strict=True))]

    def stage_logits(self, built: Built, stream: Stream, i: int, features: list[dict[str, Any]]) -> np.ndarray:
        """(n, num_labels) logits of the model on stage ``i``'s featurised examples (one model: every stage alike)."""
        return np.asarray(built.predictor.outputs(built.model, features), dtype=np.float32)

    def finished(self, built: Built, stream: Stream, rows: list[list[float] | None], baseline: list[float] | None,
                 record: StreamFit) -> Fitted:
        names = [stage.name for stage in stream.stages]
        summary = continual_summary(names, rows, baseline, stream.setting)
        built.model.eval()
        scores = StageScores(built.predictor, built.predictor.task, stream) if stream.setting == "task" else None
        return Fitted(built.predictor, record, built.parameters, built.loaded.info,
                      extra_metrics=lambda: {"continual": summary}, evaluate=scores)


class StageObjective:
    """The strategy's objective for one stage with an extra term in ``loss`` (EWC's penalty, LwF's distillation):
    what trains and the callbacks stay the strategy's; subclasses hold the stage's state and define ``loss``."""

    def __init__(self, strategy: ContinualStrategy) -> None:
        self.strategy = strategy

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float,
                     weight_decay: float) -> list[dict[str, Any]]:
        return self.strategy.param_groups(model, learning_rate, head_learning_rate, weight_decay)

    def callbacks(self) -> list[Any]:
        return self.strategy.callbacks()


def stream_of(ctx: RunContext) -> Stream:
    if ctx.splits.stream is None:
        raise UserError("this strategy learns a stream of stages: set data.stream")
    return ctx.splits.stream


def stage_name(t: int) -> str:
    return f"stage-{t + 1}"


def seen_classes(stream: Stream, t: int) -> list[int]:
    """The classes of stages ``0..t``."""
    return sorted({c for stage in stream.stages[: t + 1] for c in stage.classes})


def allowed_classes(stream: Stream, t: int | None, i: int) -> list[int] | None:
    """The classes stage ``i``'s test set is predicted among after stage ``t``: those seen so far (``class``: a model
    predicts only among classes it was taught; all of them when ``t`` is None), stage ``i``'s own (``task``: the stage
    is named), every class (None: ``domain``)."""
    if stream.setting == "task":
        return list(stream.stages[i].classes)
    if stream.setting == "class" and t is not None:
        return seen_classes(stream, t)
    return None


def trainable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().contiguous().clone() for name, p in model.named_parameters() if p.requires_grad}


class Progress:
    """The finished stages of a stream under ``directory``: ``stage-k/`` holds ``R[k]``, the fit record and the
    memory; the latest also the trainable weights (earlier weights are dropped: only the last is resumed from; for
    ``adapters`` they hold every stage's adapter and head, all of which stay trainable, i.e. part of the delta).
    Each stage is written to a temporary directory and renamed, so a kill never leaves a half-written stage."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _stage_dir(self, t: int) -> str:
        return os.path.join(self.directory, stage_name(t))

    def load(self, model: torch.nn.Module) -> tuple[list[list[float] | None], Memory, StreamFit]:
        """The rows, memory and fit record of the finished stages, and their last weights loaded into ``model``."""
        finished = 0
        while os.path.isfile(os.path.join(self._stage_dir(finished), "stage.json")):
            finished += 1
        if not finished:
            return [], {}, StreamFit()
        last = self._stage_dir(finished - 1)
        model.load_state_dict(load_file(os.path.join(last, "weights.safetensors")), strict=False)
        memory_file = os.path.join(last, "memory.safetensors")
        memory = load_file(memory_file) if os.path.isfile(memory_file) else {}
        with open(os.path.join(last, "stage.json"), encoding="utf-8") as handle:
            record = json.load(handle)
        return record["rows"], memory, StreamFit(record["history"], record["steps"])

    def save(self, t: int, model: torch.nn.Module, row: list[float], memory: Memory, record: StreamFit,
             checkpoint: str) -> None:
        """Stage ``t`` finished: write it (atomically), then drop the previous stage's weights and this stage's
        Trainer checkpoint (``checkpoint``), which a resumed run no longer needs."""
        target = self._stage_dir(t)
        tmp = target + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        save_file(trainable_weights(model), os.path.join(tmp, "weights.safetensors"))
        if memory:
            save_file({k: v.contiguous() for k, v in memory.items()}, os.path.join(tmp, "memory.safetensors"))
        rows = [*self._rows(t), row]
        with open(os.path.join(tmp, "stage.json"), "w", encoding="utf-8") as handle:
            json.dump({"rows": rows, "history": record.history, "steps": record.steps}, handle)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        if t > 0:
            for name in ("weights.safetensors", "memory.safetensors"):
                path = os.path.join(self._stage_dir(t - 1), name)
                if os.path.exists(path):
                    os.remove(path)
        shutil.rmtree(checkpoint, ignore_errors=True)

    def _rows(self, t: int) -> list[list[float] | None]:
        if t == 0:
            return []
        with open(os.path.join(self._stage_dir(t - 1), "stage.json"), encoding="utf-8") as handle:
            return json.load(handle)["rows"]

    def baseline(self) -> list[float] | None:
        path = os.path.join(self.directory, "baseline.json")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def save_baseline(self, row: list[float]) -> list[float]:
        write_json_atomic(os.path.join(self.directory, "baseline.json"), row)
        return row
