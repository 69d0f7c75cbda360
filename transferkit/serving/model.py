"""``Model``: a saved run as a Python object with ``predict`` / ``predict_proba`` (as SetFit and ``pipeline`` users expect).

>>> model = transferkit.load("runs/sst2")                       # doctest: +SKIP
>>> model.predict(["a gripping, funny film", "a dull mess"])    # doctest: +SKIP
['1', '0']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from transferkit.core.contracts import Predictor


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

    def _examples(self, inputs: Sequence[Any]) -> Any:
        """The task's examples of ``inputs``, checked once for text the model cannot read (``[UNK]`` rate)."""
        examples = self.task.from_inputs(inputs)
        self.predictor.check_inputs(examples, "the predict() inputs")
        return examples

    def __repr__(self) -> str:
        return f"Model({self.run_dir!r}, task={self.task.name}, labels={self.labels})"
