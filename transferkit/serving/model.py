"""``Model``: a saved run as a Python object with ``predict`` / ``predict_proba`` (as SetFit and ``pipeline`` users expect).

>>> model = transferkit.load("runs/sst2")                       # doctest: +SKIP
>>> model.predict(["a gripping, funny film", "a dull mess"])    # doctest: +SKIP
['1', '0']
>>> model.records(["a dull mess"])                              # doctest: +SKIP
[{'text': 'a dull mess', 'label': '0', 'probabilities': {'0': 0.93, '1': 0.07}}]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import yaml

from transferkit.core.config import build_dataclass
from transferkit.core.contracts import Predictor
from transferkit.core.errors import UserError
from transferkit.data import LabelMap
from transferkit.serving.predictor import NeuralPredictor, load_predictor
from transferkit.tasks import TASKS

MAIN_TASK = "main"
"""The name of a run's own task among a multi-task model's tasks."""


class Model:
    """A loaded run: the predictor plus the task that reads inputs and presents predictions."""

    def __init__(self, predictor: Predictor, task: Any, run_dir: str) -> None:
        self.predictor, self.task, self.run_dir = predictor, task, run_dir
        self.labels = list(task.labels)

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        """Labels for texts (classification), tag lists for sentences (NER), answers for (question, context)
        pairs (QA), summaries for documents."""
        return self.task.present(self.predictor.predict(self._examples(inputs)))

    def predict_proba(self, inputs: Sequence[Any]) -> np.ndarray:
        """(n, num_labels) class probabilities, columns in ``labels`` order (classification)."""
        return self.task.probabilities(self.predictor.predict(self._examples(inputs)))

    def records(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """The records ``transferkit predict`` writes for ``inputs`` (``Task.prediction_records``), JSON-ready.

        No ``[UNK]``-rate check: a server calls this for every batch, where one warning per batch is noise."""
        examples = self.task.from_inputs(inputs)
        return self.task.prediction_records(self.predictor.predict(examples), examples)

    def for_task(self, name: str | None) -> Model:
        """The model of one task of a multi-task run (a data source's name) or of one stage of a stream learned in
        the task setting (``NeuralPredictor.for_task``); ``main`` or None: this run's own."""
        if name in (None, MAIN_TASK):
            return self
        if not isinstance(self.predictor, NeuralPredictor):
            raise UserError(f"--task {name}: {self.run_dir} is not a multi-task model (it has one task)")
        predictor = self.predictor.for_task(name)
        return Model(predictor, predictor.task, self.run_dir)

    def _examples(self, inputs: Sequence[Any]) -> Any:
        """The task's examples of ``inputs``, checked once for text the model cannot read (``[UNK]`` rate)."""
        examples = self.task.from_inputs(inputs)
        self.predictor.check_inputs(examples, "the predict() inputs")
        return examples

    def __repr__(self) -> str:
        return f"Model({self.run_dir!r}, task={self.task.name}, labels={self.labels})"


def read_run_config(run_dir: str) -> dict[str, Any]:
    """A finished run's ``config.yaml`` as a dict."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        raise UserError(f"{run_dir} is not a finished transferkit run (no config.yaml)")
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def saved_task(run_dir: str, saved: dict[str, Any]) -> Any:
    """The run's task with its saved options and labels (it reads the files and scores the predictions)."""
    task_cls = TASKS.get(saved["task"]["name"])
    options = {k: v for k, v in saved["task"].items() if k != "name"}
    labels = LabelMap.load(os.path.join(run_dir, "model", "labels.json")).names
    return task_cls(build_dataclass(task_cls.Config, options, "run config task"), labels)


def load_model(run_dir: str) -> Model:
    """A finished run directory's model and task (``transferkit.load``)."""
    saved = read_run_config(run_dir)
    return Model(load_predictor(run_dir), saved_task(run_dir, saved), run_dir)
