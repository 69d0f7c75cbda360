"""``multitask``: one shared encoder, one head per task, ``L = Σ_t λ_t · L_t`` (Caruana 1997; for transformers
MT-DNN, Liu et al. 2019).

The run's own task and data (``data.train``) are the task ``main``; every labelled data source with a
``task`` (``data.sources.NAME: {path, task, label_column}``) is another task with its own labels,
head and held-out split, named ``NAME``, whether or not its kind equals the main task's (two sentiment
datasets with different label sets are two classification tasks).  Each step trains one task's batch,
drawn by :class:`~transferkit.data.sources.MixedSources`: ``temperature`` sampling ``p_t ∝ n_t^(1/T)``
(the default, T = 2: a 200-example target beside a 67k-sentence source gets ~5% of the steps instead of
0.3%; Arivazhagan et al. 2019, mT5), ``proportional`` to the tasks' sizes, or ``round_robin``; its
loss is weighted by ``λ_t`` (``weights.NAME``, 1 by default).  The
two-task case ``L_source + λ · L_target`` is ``weights: {main: λ}`` with the source as a data source.

Every task is evaluated on its own held-out split after every epoch (``NAME/accuracy`` beside the main
task's metrics; ``training.metric_for_best`` picks the one that selects the checkpoint).  The saved
model carries every head; ``predict --task NAME`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from transferkit.core.config import option, source_configs
from transferkit.core.contracts import Batch, Fitted, Losses, RunContext
from transferkit.core.errors import UserError
from transferkit.data.sources import MixedSources, SingleSource
from transferkit.strategies.base import check_source_files
from transferkit.strategies.finetune import Finetune, FinetuneConfig
from transferkit.strategies.multitask.tasks import (
    MAIN,
    final_task_metrics,
    per_task_metrics,
    read_task_sources,
    task_source_names,
)
from transferkit.tasks import TASKS


@dataclass
class MultitaskConfig(FinetuneConfig):
    sampling: Literal["proportional", "temperature", "round_robin"] = option(
        "temperature", "which task each step trains: temperature (p ∝ n^(1/T): small tasks upsampled), proportional "
                       "to task size, or round_robin")
    temperature: float = option(2.0, "T of temperature sampling (1 = proportional; larger = closer to uniform)")
    weights: dict[str, float] = field(default_factory=dict, metadata={
        "help": "λ per task, e.g. {main: 1.0, sst2: 0.5} (main = the run's own task); unlisted tasks weigh 1"})


class Multitask(Finetune):
    """One encoder trained on several tasks at once, a head per task."""

    name: ClassVar[str] = "multitask"
    supports: ClassVar[frozenset[str]] = frozenset({"classification", "token_classification"})
    Config: ClassVar[type] = MultitaskConfig

    def fit(self, ctx: RunContext) -> Fitted:
        """Every task source read by its own task; a head per task on the shared encoder; one task's batch per
        step; every task evaluated after every epoch and at the end."""
        specs = source_configs(ctx.config.data.sources)
        tasks = read_task_sources(specs, ctx.config.data, ctx.config.training.seed)
        loaded = self.source_model(ctx)
        model, meta = self.task_model(ctx, loaded)
        for name, source in tasks.items():  # a head per extra task on the shared encoder
            model.add_head(source.task, self.mlp_hidden, name=name)
        if tasks:
            meta["heads"] = {name: source.head_meta() for name, source in tasks.items()}
        built = self.complete(ctx, loaded, self.start_from(ctx, model, meta, loaded))
        predictor, max_length = built.predictor, ctx.config.data.max_length
        main = self.evaluator(ctx, built)  # eval split first: the saved tokenizer keeps the last call's truncation
        features = {"train": predictor.featurize(ctx.splits.train),
                    **{name: t.task.featurize(t.splits.train, predictor.tokenizer, max_length) for name, t in tasks.items()}}
        task_eval = {name: t.task.featurize(t.splits.eval, predictor.tokenizer, max_length) for name, t in tasks.items()}

        def evaluate(model: Any) -> dict[str, Any]:
            return {**main(model), **per_task_metrics(predictor, model, tasks, task_eval)}

        fitted = self.finish(ctx, built, self.train(ctx, built, features, evaluate))
        if tasks:  # every other task on its own held-out split, through the saved model's head for it
            fitted.extra_metrics = lambda: {"tasks": final_task_metrics(predictor, tasks)}
        return fitted

    def check_task(self, task_cls: type) -> None:
        if self.config.temperature <= 0:
            raise UserError(f"strategy.temperature={self.config.temperature}: the sampling temperature must be > 0")
        bad = {name: value for name, value in self.config.weights.items() if not value > 0}
        if bad:
            name, value = next(iter(bad.items()))
            raise UserError(f"strategy.weights.{name}={value}: a task weight λ must be > 0 (leave a task out instead)")

    def check_sources(self, sources: Any, task_name: str) -> None:
        """Every data source is a task of its own (with its labels), and every weighted task exists."""
        specs = source_configs(sources)
        check_source_files(specs)
        names = task_source_names(specs)
        plain = sorted(set(specs) - set(names))
        if MAIN in names:
            raise UserError(f"data.sources.{MAIN}: '{MAIN}' names the run's own task; give this source another name")
        if plain:
            raise UserError(f"data.sources.{plain[0]}: strategy '{self.name}' trains tasks; give the source a task "
                            f"and its labels (data.sources.{plain[0]}.task=classification, .label_column=COLUMN)")
        generative = [name for name in names if TASKS.get(str(specs[name].task)).generative]
        if generative:
            raise UserError(f"data.sources.{generative[0]}: task '{specs[generative[0]].task}' generates text with its "
                            "own decoder; multitask shares an encoder between task heads (classification, "
                            "token_classification, question_answering)")
        unknown = sorted(set(self.config.weights) - {MAIN, *names})
        if unknown:
            raise UserError(f"strategy.weights.{unknown[0]}: no such task; the tasks are {', '.join([MAIN, *names])}")

    def weight(self, name: str) -> float:
        return float(self.config.weights.get(name, 1.0))

    def batch_source(self, features: dict[str, list[dict[str, Any]]], collator: Any, config: Any) -> MixedSources:
        """One task's batch per step: ``main`` (the run's training rows) and every task source."""
        named = {MAIN: features["train"], **{name: rows for name, rows in features.items() if name != "train"}}
        sources = {name: SingleSource.from_config(rows, collator, config, config.seed + index)
                   for index, (name, rows) in enumerate(named.items())}
        return MixedSources(sources, self.config.sampling, self.config.temperature, config.seed)

    def loss(self, model: Any, batch: Batch) -> Losses:
        """``λ_t · L_t`` of the one task in this step's batch (``{name: batch}``)."""
        total, parts = None, {}
        for name, sub in batch.items():
            task = None if name == MAIN else name
            loss = self.weight(name) * model.task_for(task).loss(model(sub, task=task), sub)
            parts[name] = float(loss.detach())
            total = loss if total is None else total + loss
        return Losses(total, parts)
