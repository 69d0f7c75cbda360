"""The contracts every task, strategy and callback fulfils.

A **Task** knows its data and its head, not how the model is adapted.
A **Strategy** knows how to adapt a model, not what the task is.
The Trainer only sees these protocols, so adding a strategy never touches it.
Tensors appear only as ``Any`` here: ``core`` stays free of torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Batch = dict[str, Any]
"""A collated batch: ``input_ids``, ``attention_mask``, ``labels`` ... (tensors)."""


@dataclass
class Losses:
    """The loss to minimise plus named parts that are logged (e.g. ``task``, ``domain``)."""

    total: Any
    parts: dict[str, float] = field(default_factory=dict)


@dataclass
class TextExamples:
    """Validated classification examples, aligned lists; ``rows`` are 1-based source rows."""

    texts: list[str]
    labels: list[int] | None = None
    text_pairs: list[str] | None = None
    rows: list[int] | None = None
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Any) -> TextExamples:
        def pick(values: list | None) -> list | None:
            return None if values is None else [values[i] for i in indices]

        return TextExamples(
            texts=[self.texts[i] for i in indices],
            labels=pick(self.labels),
            text_pairs=pick(self.text_pairs),
            rows=pick(self.rows),
            source=self.source,
        )


class Task(Protocol):
    """Head + featurisation + loss + decoding + metrics for one kind of prediction."""

    name: ClassVar[str]
    Config: ClassVar[type]
    config: Any
    labels: list[str]

    def build_head(self, hidden_size: int) -> Any: ...
    def featurize(self, examples: TextExamples, tokenizer: Any, max_length: int) -> list[dict[str, Any]]: ...
    def loss(self, outputs: dict[str, Any], batch: Batch) -> Any: ...
    def decode(self, outputs: dict[str, Any]) -> Any: ...
    def metrics(self, probabilities: Any, references: Any) -> dict[str, Any]: ...


StrategyKind = Literal["neural", "frozen", "classical"]


class Strategy(Protocol):
    """How a pretrained model is adapted.

    ``kind`` tells the composition root how to drive it:

    * ``neural``: the Trainer optimises ``param_groups`` on ``loss`` over token batches;
    * ``frozen``: the encoder never changes, so its features are computed once (cached
      on disk) and only the head is fitted, by the Trainer or in closed form
      (``fit_head``);
    * ``classical``: no pretrained model at all (e.g. TF-IDF); ``fit`` returns a predictor.
    """

    name: ClassVar[str]
    supports: ClassVar[frozenset[str]]
    requires: ClassVar[frozenset[str]]
    kind: ClassVar[StrategyKind]
    Config: ClassVar[type]
    config: Any

    def prepare(self, model: Any) -> Any: ...
    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list[dict[str, Any]]: ...
    def loss(self, model: Any, batch: Batch) -> Losses: ...
    def callbacks(self) -> list[Callback]: ...


@runtime_checkable
class Predictor(Protocol):
    """A fitted model that maps examples to class probabilities and saves itself."""

    labels: list[str]

    def predict_proba(self, examples: TextExamples) -> Any: ...
    def save(self, directory: str) -> None: ...


@dataclass
class TrainState:
    """What callbacks see and may change (``should_stop``)."""

    epoch: int = 0
    step: int = 0  # optimiser steps taken
    batch_in_epoch: int = 0
    total_steps: int = 0
    should_stop: bool = False
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class Callback(Protocol):
    """Optional behaviour around the loop; a handful of events is enough."""

    def on_fit_start(self, state: TrainState, model: Any) -> None: ...
    def on_epoch_start(self, state: TrainState, model: Any) -> None: ...
    def on_step_end(self, state: TrainState, model: Any, losses: Losses) -> None: ...
    def on_evaluate(self, state: TrainState, model: Any, metrics: dict[str, float]) -> None: ...
