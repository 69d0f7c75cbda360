"""The contracts every task and callback fulfils, and the containers they exchange.

A **Task** knows its data and its head, not how the model is adapted: it reads its files,
splits them, featurises, computes the loss, runs inference, decodes, scores and writes
prediction records.  A **Strategy** (``transferkit.strategies.base.Strategy``) knows how to
adapt a model, not what the task is: its ``fit(ctx)`` runs the method's whole plan over a
:class:`RunContext` (the run's services, implemented by ``experiments.context`` for runs) and returns
:class:`Fitted`.  The Trainer drives an :class:`Objective`.  The composition root, the Trainer,
evaluation and serving call only the hooks declared here and on the ``Strategy`` base class:
they never probe a task or a strategy for optional attributes.
Tensors appear only as ``Any`` here: ``core`` stays free of torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

IGNORE_INDEX = -100
"""Label of positions a loss ignores (padding, non-first subwords): PyTorch's ``ignore_index`` default."""

Batch = dict[str, Any]
"""A collated batch: ``input_ids``, ``attention_mask``, ``labels`` ... (tensors).  A batch
source over several named datasets yields ``{name: Batch}`` instead (see ``data.sources``)."""


@dataclass
class Losses:
    """The loss to minimise plus named parts that are logged (e.g. ``task``, ``domain``)."""

    total: Any
    parts: dict[str, float] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)
    """Tensors the batch's loss computed that a strategy's own callbacks read in ``on_batch_end`` (e.g. the target
    logits a domain monitor counts); never logged."""


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


@dataclass
class Splits:
    """The examples of one run: train (after split, budget and caps), eval, named test sets.

    ``eval`` is the split that per-epoch evaluation and best-checkpoint restore use;
    ``tests`` maps a test-set name to its examples (``data.test``), each evaluated once at the end.
    ``labels`` are the label names (class names, tags; empty for tasks without labels).
    """

    train: Any
    eval: Any
    tests: dict[str, Any]
    labels: list[str]
    stream: Stream | None = None
    """The stages of a continual-learning run (``data.stream``), in order; None for every other run.  Then ``train``,
    ``eval`` are the stages' examples concatenated, ``tests`` holds each stage's test set under its name (beside any
    ``data.test``) and ``labels`` the union of the stages' labels."""


@dataclass
class Stage:
    """One stage of a continual-learning stream: its name and its own examples, labels encoded against the run's
    label set (``Splits.labels``); ``classes`` are the ids of the labels this stage's examples use, sorted."""

    name: str
    train: Any
    eval: Any
    test: Any
    classes: list[int]


@dataclass
class Stream:
    """The stages of ``data.stream`` in order, and the resolved ``continual.setting``: ``domain`` (every stage has the
    same labels), ``class`` (labels accumulate into one head; a label is ``STAGE:LABEL`` unless ``label_map`` maps
    stages onto shared names) or ``task`` (a head per stage: every label is ``STAGE:LABEL``, a stage's classes are
    its own rows of the output layer, and the stage is named at prediction)."""

    setting: str
    stages: list[Stage]


FeatureKind = Literal["pooled", "tokens", "none"]
InputForm = Literal["text", "pair", "tokens", "question_context"]
"""A shape of one input ``Task.from_inputs`` reads: a string, two strings (a text pair), a list of tokens, or a
(question, context) pair of strings."""


class Task(Protocol):
    """Reading + head + featurisation + loss + inference + decoding + metrics + records for one kind of prediction.

    Class attributes describe the task to the rest of the code without instances:
    ``primary_metric`` (best-checkpoint selection, first report column), ``report_metrics``,
    ``metric_titles`` (how a card titles them), ``budget_unit`` (what ``data.budget`` counts)
    and ``feature_kind`` (what a frozen encoder caches for it: pooled vectors, token states,
    or nothing) and ``generative`` (the task needs a whole encoder-decoder LM).
    ``input_forms`` are the shapes ``from_inputs`` reads (its default first), which the HTTP server checks a
    request against; ``prediction_records`` gives the records ``write_predictions`` writes (JSON-ready dicts), so
    ``transferkit predict`` and ``transferkit serve`` answer with the same records.
    ``input_texts`` gives the strings the tokenizer reads from examples (texts and pairs, sentences,
    questions and contexts, documents and summaries) for checks such as the ``[UNK]`` rate.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    primary_metric: ClassVar[str]
    report_metrics: ClassVar[tuple[str, ...]]
    metric_titles: ClassVar[dict[str, str]]
    budget_unit: ClassVar[str]
    feature_kind: ClassVar[FeatureKind]
    generative: ClassVar[bool]
    input_forms: ClassVar[tuple[InputForm, ...]]
    config: Any
    labels: list[str]

    @classmethod
    def read_splits(cls, data: Any, config: Any, seed: int) -> Splits: ...
    def read(self, path: str, data: Any, require_targets: bool = True) -> Any: ...
    def from_inputs(self, inputs: Any) -> Any: ...
    def input_texts(self, examples: Any) -> list[str]: ...
    def data_summary(self, examples: Any) -> dict[str, Any]: ...
    def build_model(self, loaded: Any, mlp_hidden: int = 0) -> Any: ...
    def model_from_config(self, config: Any, mlp_hidden: int = 0) -> Any: ...
    def featurize(self, examples: Any, tokenizer: Any, max_length: int) -> list[dict[str, Any]]: ...
    def loss(self, outputs: dict[str, Any], batch: Batch) -> Any: ...
    def infer(self, model: Any, features: list[dict[str, Any]], collator: Any, batch_size: int) -> Any: ...
    def decode(self, outputs: Any, features: list[dict[str, Any]], examples: Any, tokenizer: Any) -> Any: ...
    def references(self, examples: Any) -> Any: ...
    def metrics(self, predictions: Any, references: Any) -> dict[str, Any]: ...
    def evaluate(self, predictions: Any, examples: Any, seed: int = 0) -> dict[str, Any]: ...
    def present(self, predictions: Any) -> list[Any]: ...
    def probabilities(self, predictions: Any) -> Any: ...
    def prediction_records(self, predictions: Any, examples: Any) -> list[dict[str, Any]]: ...
    def write_predictions(self, path: str, predictions: Any, examples: Any) -> int: ...
    def transformers_head(self, model: Any) -> tuple[str, dict[str, str]] | None: ...


@runtime_checkable
class Predictor(Protocol):
    """A fitted model that maps examples to task predictions and saves itself.

    ``check_inputs`` warns (never raises) when examples look unreadable by the model, e.g. when
    many of their tokens are the tokenizer's ``[UNK]``.
    """

    labels: list[str]

    def predict(self, examples: Any) -> Any: ...
    def check_inputs(self, examples: Any, where: str) -> None: ...
    def save(self, directory: str) -> None: ...


class TextEncoder(Protocol):
    """A frozen text encoder: texts -> one (dimension,) float32 vector each, the same vector for the same text.

    Any such encoder is a feature-extraction source: ``feature_extraction`` computes
    ``Z = encode(texts)`` (n, dimension) once per distinct text (cached on disk under
    ``cache_key()``) and fits only a head ``softmax(W z + b)`` on it.  A transformer's pooled
    states ``z = pool(h_layer(x))`` are one (``modules.inference.PooledEncoder``); a packaged
    sentence encoder such as the multilingual Universal Sentence Encoder is another
    (``models.text_encoders``).

    ``name`` is the model reference (a catalog name or path), ``fingerprint`` identifies the exact
    weights, ``cache_key()`` holds everything that determines the vectors (fingerprint, and for a
    transformer its layer, pooling and max length).
    """

    name: str
    fingerprint: str
    dimension: int

    def cache_key(self) -> dict[str, Any]: ...
    def encode(self, texts: list[str], text_pairs: list[str] | None = None) -> Any: ...  # (n, dimension) float32


@dataclass
class TrainState:
    """What callbacks see and may change (``should_stop``); saved in every checkpoint.

    ``sources`` is the batch source's position state and ``callbacks`` each callback's
    ``state_dict()`` (keyed by class name), so a resumed run continues exactly.
    """

    epoch: int = 0
    step: int = 0  # optimiser steps taken
    batch_in_epoch: int = 0
    total_steps: int = 0
    should_stop: bool = False
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Optional behaviour around the loop (Lightning's shape, a handful of events).

    Every hook is a no-op here; subclasses override what they need.  ``state_dict`` /
    ``load_state_dict`` carry a callback's own state through checkpoints (JSON-serialisable).
    """

    def on_fit_start(self, state: TrainState, model: Any) -> None:
        """Before the first step (also after a resume)."""

    def on_epoch_start(self, state: TrainState, model: Any) -> None:
        """At the start of every epoch (also a resumed one)."""

    def on_batch_end(self, state: TrainState, model: Any, losses: Losses) -> None:
        """After every batch's loss and backward pass (several per optimiser step under gradient accumulation)."""

    def on_step_end(self, state: TrainState, model: Any, losses: Losses) -> None:
        """After every optimiser step."""

    def on_evaluate(self, state: TrainState, model: Any, metrics: dict[str, Any]) -> None:
        """After every per-epoch evaluation."""

    def on_fit_end(self, state: TrainState, model: Any) -> None:
        """After the last step, before the best state is restored."""

    def state_dict(self) -> dict[str, Any]:
        """This callback's resumable state (JSON-serialisable)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


# ---- what a strategy's plan runs on, and what it returns ---------------------------------------
class Objective(Protocol):
    """What the Trainer optimises: parameter groups (frozen parameters absent, so they carry no optimizer
    state), the loss of one batch, and callbacks.  A neural strategy is one; a stage of a method's plan may
    bring its own (continued pretraining's masked-LM objective)."""

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float,
                     weight_decay: float) -> list[dict[str, Any]]: ...
    def loss(self, model: Any, batch: Batch) -> Losses: ...
    def callbacks(self) -> list[Callback]: ...


@dataclass
class FinishedRun:
    """A finished neural run loaded to learn from (a teacher) or to start from: its predictor (a LoRA/BitFit delta
    merged into full weights, in eval mode) and the sha256 of its saved weights."""

    path: str
    predictor: Any
    fingerprint: str


@dataclass
class Fitted:
    """What a strategy's plan returns to the composition root, which evaluates and saves it.

    ``fit`` is the Trainer's result of the plan's main training stage (``history``, ``best_step``, ``steps``;
    None when no Trainer stage ran, e.g. a closed-form head), ``parameters`` the (trainable, total) counts,
    ``info`` facts about the source recorded under ``encoder`` in metrics.json (continued pretraining's curve,
    word-vector coverage), ``extra_metrics`` a function of no arguments giving further metrics, which the
    composition root calls beside its own evaluation (a multi-task run's other tasks),
    ``no_source_model`` what the model card says instead of the model reference when the plan read no
    pretrained model (None = it did), ``evaluate`` a function ``(name, examples) -> metrics`` that scores the eval
    split (``name`` None) and each test set (by its name) where ``predictor`` cannot score them alone: a stream
    learned in the ``task`` setting predicts each example with its stage named (None = ``evaluation.evaluate``
    with ``predictor`` and the run's task).
    """

    predictor: Predictor
    fit: Any = None
    parameters: tuple[int, int] = (0, 0)
    info: dict[str, Any] = field(default_factory=dict)
    extra_metrics: Any = None
    no_source_model: str | None = None
    evaluate: Any = None


class RunContext(Protocol):
    """The services one run offers a strategy's plan: ``experiments.context.Context`` implements it for every run
    (``testing.memory_context.MemoryContext`` in memory, for contract checks).

    ``config`` is the run's resolved ``RunConfig`` (model, data, training, teacher, init_from), ``task`` the
    run's task (with its labels), ``splits`` its train/eval/test examples.
    """

    config: Any
    task: Any
    splits: Splits

    def source(self, name: str) -> Any:
        """The examples of data source ``data.sources.NAME``, read by the run's task (once)."""
    def sources(self) -> dict[str, Any]:
        """Every data source of the run, read by the run's task: ``{name: examples}``."""
    def load_run(self, run_dir: str) -> FinishedRun:
        """A finished neural run of this task (a teacher), loaded for inference."""
    def start_from_run(self, model: Any) -> tuple[dict[str, Any], str] | None:
        """``init_from``: copy that run's encoder (and head, when its labels match) into ``model``; returns
        (what was copied, for ``transferkit.json``; the fingerprint of that run's weights), or None when the
        run sets no ``init_from``."""
    def predictor(self, model: Any, loaded: Any, meta: dict[str, Any]) -> Any:
        """The predictor the run evaluates and saves for the task model ``model`` on source ``loaded``,
        with ``meta`` for ``transferkit.json``; the run's data sets are checked against it ([UNK] rate)."""
    def cached(self, key: dict[str, Any], examples: Any, encode: Any) -> Any:
        """``encode(examples) -> (n, dim)`` through the on-disk embedding cache, keyed by ``key`` + each text."""
    def train(self, objective: Objective, model: Any, batches: Any, evaluate: Any = None,
              training: Any = None, resumable: bool = True, stage: str | None = None) -> Any:
        """The one Trainer on ``batches`` with ``objective``: ``training`` settings (default: the run's),
        per-epoch ``evaluate(model) -> metrics`` (best state restored); ``resumable`` stages checkpoint into the
        run and continue on ``--resume``; a plan with several resumable stages names each (``stage``), so each
        checkpoints apart (under :meth:`state_path`) and a resumed run continues the stage it was in.  Returns the
        Trainer's ``FitResult``."""
    def cache_dir(self) -> str:
        """transferkit's cache directory (``$TRANSFERKIT_CACHE``): stages that outlive a run keep results there."""
    def run_path(self, name: str) -> str:
        """A path inside the run directory being written (e.g. ``adapted_encoder``)."""
    def state_path(self, name: str) -> str:
        """A path for a plan's resumable state (a continual stream's finished stages): kept by a killed run for
        ``--resume``, removed when the run finishes."""
