"""The tasks of a multi-task run besides its own: data sources that name a ``task``.

``data.sources.NAME: {path, task, label_column, ...}`` is, for the ``multitask`` strategy, a task of its
own: read by that task's ``read_splits`` (its own labels and a held-out eval split of
``data.eval_fraction``, never budgeted), given a head ``NAME`` on the shared encoder, and evaluated on
its held-out split after every epoch (metrics ``NAME/<metric>``) and at the end (``tasks.NAME`` in
metrics.json).  The saved model lists its extra heads under ``heads`` in ``transferkit.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from transferkit.core.config import DataConfig, SourceConfig
from transferkit.core.contracts import Splits
from transferkit.core.errors import UserError
from transferkit.evaluation import evaluate
from transferkit.tasks import TASKS

MAIN = "main"
"""The name of the run's own task (``data.train``) among the tasks of a multi-task run."""


@dataclass
class TaskSource:
    """One extra task of a multi-task run: its task (with its own labels) and its train/eval splits."""

    name: str
    task: Any
    splits: Splits

    def head_meta(self) -> dict[str, Any]:
        """What ``transferkit.json`` records to rebuild this task's head."""
        return {"task": self.task.name, "task_options": dataclasses.asdict(self.task.config), "labels": self.task.labels}


def task_source_names(specs: dict[str, SourceConfig]) -> list[str]:
    """The data sources that carry a task of their own (``task`` set)."""
    return [name for name, spec in specs.items() if spec.task is not None]


def read_task_sources(specs: dict[str, SourceConfig], data: DataConfig, seed: int) -> dict[str, TaskSource]:
    """Each task source read by its task: train + held-out eval split, its own labels."""
    result = {}
    for name in task_source_names(specs):
        spec = specs[name]
        if name == MAIN:
            raise UserError(f"data.sources.{MAIN}: '{MAIN}' names the run's own task; give this source another name")
        task_cls = TASKS.get(str(spec.task))
        source_data = dataclasses.replace(
            data, train=spec.path, eval=None, test=None, sources={}, budget=None, max_train_examples=None,
            max_eval_examples=None, text_column=spec.text_column or data.text_column,
            text_pair_column=spec.text_pair_column or data.text_pair_column,
            label_column=spec.label_column or data.label_column, format=spec.format, columns=spec.columns or data.columns)
        splits = task_cls.read_splits(source_data, task_cls.Config(), seed)
        result[name] = TaskSource(name, task_cls(task_cls.Config(), splits.labels), splits)
    return result


def per_task_metrics(predictor: Any, model: Any, tasks: dict[str, TaskSource],
                     features: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """``NAME/<metric>`` of every extra task on its held-out split (per-epoch evaluation of ``model`` in training)."""
    metrics: dict[str, Any] = {}
    for name, source in tasks.items():
        view = model.for_task(name)
        task = source.task
        predictions = task.decode(task.infer(view, features[name], predictor.collator, predictor.batch_size),
                                  features[name], source.splits.eval, predictor.tokenizer)
        scores = task.metrics(predictions, task.references(source.splits.eval))
        metrics.update({f"{name}/{key}": value for key, value in scores.items() if isinstance(value, (int, float))})
    return metrics


def final_task_metrics(predictor: Any, tasks: dict[str, TaskSource]) -> dict[str, Any]:
    """Each extra task's full evaluation (with CIs) on its held-out split, through the saved model's own head."""
    return {name: evaluate(predictor.for_task(name), source.task, source.splits.eval) for name, source in tasks.items()}
