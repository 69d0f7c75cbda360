"""The ``task`` setting of a stream (task-incremental learning: van de Ven & Tolias 2019, "Three scenarios for
continual learning"): every stage has a head of its own and the stage is named at prediction.

A stage's head is its rows of the one output layer (every label is ``STAGE:LABEL``, so no two stages share a row),
or, for ``adapters``, a head module of its own.  What changes against the ``class`` setting:

* training (every continual method): the cross-entropy of an example runs over its own stage's classes only,

      L(x, y) = −log softmax_{c ∈ C(x)}(s)_y = −s_y + log Σ_{c ∈ C(x)} exp(s_c),

  with ``s`` the logits and ``C(x)`` the classes of the stage ``x`` came from: the other logits are set to −∞
  (``class_mask``, one boolean row per example, so a replayed memory batch mixes stages freely);
* evaluation: ``R[t, i]`` and each stage's test metrics take the argmax (and the probabilities, renormalised)
  over stage ``i``'s classes, exactly what ``predict --task NAME`` gives;
* the saved model lists its stages (``stages`` in ``transferkit.json``: classes and own labels) and predicts only
  with one named.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from transferkit.core.contracts import Stream, TextExamples
from transferkit.evaluation import evaluate

CLASS_MASK = "class_mask"
"""The feature key of an example's allowed classes in the task setting: a (num_labels,) boolean row."""


def stage_meta(stream: Stream, labels: list[str]) -> dict[str, dict[str, Any]]:
    """What ``transferkit.json`` records of each stage: its class ids in the run's labels and its own label names
    (``STAGE:LABEL`` without ``STAGE:``), in stream order."""
    return {stage.name: {"classes": list(stage.classes),
                         "labels": [labels[c].removeprefix(f"{stage.name}:") for c in stage.classes]}
            for stage in stream.stages}


def stage_features(predictor: Any, stream: Stream, s: int, examples: Any) -> list[dict[str, Any]]:
    """Stage ``s``'s examples featurised; in the task setting each carries the stage's ``class_mask``."""
    features = predictor.featurize(examples)
    if stream.setting != "task":
        return features
    mask = np.zeros(len(predictor.labels), dtype=bool)
    mask[stream.stages[s].classes] = True
    for feature in features:
        feature[CLASS_MASK] = mask
    return features


def stage_loss(model: Any, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The model's outputs on ``batch`` and the task's loss; with a ``class_mask`` (the task setting) the logits of
    other stages' classes are −∞ for the loss (they get no gradient from it).  The outputs are returned unmasked."""
    outputs = model(batch)
    if CLASS_MASK not in batch:
        return outputs, model.task.loss(outputs, batch)
    masked = outputs["logits"].masked_fill(~batch[CLASS_MASK].bool(), float("-inf"))
    return outputs, model.task.loss({**outputs, "logits": masked}, batch)


def restricted(logits: np.ndarray, features: list[dict[str, Any]]) -> np.ndarray:
    """``logits`` (n, num_labels) with −∞ outside each example's ``class_mask`` (unchanged without masks)."""
    if not features or CLASS_MASK not in features[0]:
        return logits
    return np.where(np.stack([feature[CLASS_MASK] for feature in features]), logits, -np.inf).astype(np.float32)


def stage_metrics(predictor: Any, model: Any, features: list[dict[str, Any]], examples: Any) -> dict[str, Any]:
    """``model.task``'s metrics of ``model`` on featurised ``examples`` (per-epoch evaluation of a stage), over each
    example's own stage's classes in the task setting."""
    logits = restricted(np.asarray(predictor.outputs(model, features), dtype=np.float32), features)
    task = model.task
    return task.metrics(task.decode(logits, features, examples, predictor.tokenizer), task.references(examples))


def own_examples(examples: TextExamples, classes: list[int]) -> TextExamples:
    """``examples`` of one stage with their labels as positions among the stage's ``classes`` (its own labels)."""
    assert examples.labels is not None
    position = {c: i for i, c in enumerate(classes)}
    return dataclasses.replace(examples, labels=[position[label] for label in examples.labels])


class StageScores:
    """``Fitted.evaluate`` of a stream learned in the task setting.

    A stage's test set is scored by that stage's predictor (``predictor.for_task(NAME)``, what ``predict --task
    NAME`` loads), over the stage's own labels; the eval split (every stage's eval examples, in stream order) by each
    stage's predictor, its probabilities placed in the run's label columns (zero elsewhere), over the run's labels.
    """

    def __init__(self, predictor: Any, task: Any, stream: Stream) -> None:
        self.predictor, self.task, self.stream = predictor, task, stream

    def __call__(self, name: str | None, examples: Any) -> dict[str, Any]:
        if name is None:
            return evaluate(self, self.task, examples)
        stage = next(stage for stage in self.stream.stages if stage.name == name)
        view = self.predictor.for_task(name)
        return evaluate(view, view.task, own_examples(examples, stage.classes))

    def predict(self, examples: Any) -> np.ndarray:
        """(n, num_labels) probabilities of the eval split, each stage's rows predicted with the stage named."""
        sizes = [len(stage.eval) for stage in self.stream.stages]
        if len(examples) != sum(sizes):
            raise ValueError(f"{len(examples)} examples, but the stages' eval splits hold {sum(sizes)}")
        result = np.zeros((len(examples), len(self.task.labels)), dtype=np.float32)
        start = 0
        for stage, size in zip(self.stream.stages, sizes, strict=True):
            if size:
                rows = examples.subset(range(start, start + size))
                result[start:start + size, stage.classes] = self.predictor.for_task(stage.name).predict(rows)
            start += size
        return result
