"""Typed run configuration: dataclasses with help text, YAML round-trip, dotted overrides.

A run is described by :class:`RunConfig`.  Strategy and task options are open
mappings here (``ComponentSpec.options``) because their schema belongs to the chosen
strategy/task: each strategy/task module declares a ``Config`` dataclass and
:func:`build_dataclass` validates the options against it, so an unknown key always
gets a "did you mean" suggestion.

>>> cfg = RunConfig.from_dict({"model": "minilm-l6", "strategy": {"name": "finetune", "freeze_layers": 2}})
>>> apply_overrides(cfg, ["training.epochs=2", "data.budget=32"]).training.epochs
2
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from transferkit.core.errors import UserError, closest
from transferkit.core.yaml_config import load_yaml


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field carrying ``help`` text (shown by ``transferkit strategies``)."""
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class ComponentSpec:
    """A registry name plus options validated later against that component's ``Config``."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any, key: str) -> ComponentSpec:
        if isinstance(value, ComponentSpec):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            options = {k: v for k, v in value.items() if k != "name"}
            return cls(value["name"], options)
        raise UserError(f"config field '{key}' must be a name or a mapping with 'name', got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


@dataclass
class SourceConfig:
    """A named extra data source (``data.sources.NAME``): text-only (no label column) or labelled.

    ``data.sources.target_unlabeled: FILE`` is shorthand for ``{path: FILE}``; unset columns
    default to the run's ``data`` columns.
    """

    path: str = option("", "the file (same formats as data.train)")
    task: str | None = option(None, "task that reads a labelled source (null = the run's task)")
    text_column: str | None = option(None, "text column (null = data.text_column)")
    text_pair_column: str | None = option(None, "second text column (null = data.text_pair_column)")
    label_column: str | None = option(None, "label column; null = a text-only (unlabelled) source")
    format: str = option("auto", "file format (as data.format)")
    columns: list[str] | None = option(None, "field names of a csv/tsv file without a header line (null = data.columns)")


def source_configs(sources: dict[str, Any] | None, where: str = "data.sources") -> dict[str, SourceConfig]:
    """Validated named sources; a bare string is a path; an empty path is a one-line error."""
    result = {}
    for name, value in (sources or {}).items():
        spec = build_dataclass(SourceConfig, {"path": value} if isinstance(value, str) else value, f"{where}.{name}")
        if not spec.path:
            raise UserError(f"{where}.{name}: no path; give a file, e.g. {where}.{name}=FILE")
        result[str(name)] = spec
    return result


def test_configs(test: str | dict[str, Any] | None) -> dict[str, SourceConfig]:
    """``data.test`` as name -> :class:`SourceConfig` (a single file is the test set ``test``); unset columns
    and format are the run's ``data`` ones."""
    if not test:
        return {}
    return source_configs(test if isinstance(test, dict) else {"test": test}, "data.test")


@dataclass
class DataConfig:
    """Where the examples come from and how they are split."""

    train: str | None = option(None, "training file (csv/tsv/jsonl), HF datasets dir, or 'hf:NAME[:CONFIG]'")
    eval: str | None = option(None, "evaluation file (per-epoch evaluation, best-checkpoint selection); "
                                    "if absent, a stratified split of train")
    test: str | dict[str, Any] | None = option(
        None, "held-out test file, or a mapping name -> file or {path, text_column, label_column, ...} (several "
              "test sets, e.g. one per language, each with its own columns); each is evaluated once at the end")
    sources: dict[str, Any] = option({}, "named extra data: NAME -> file or {path, text_column, label_column, task, format}"
                                         " (e.g. target_unlabeled for domain adaptation)")
    format: Literal["auto", "csv", "tsv", "jsonl", "hf", "conll", "chinese_bio", "msra", "squad",
                    "amazon_reviews"] = option(
        "auto", "file format; auto = by extension (conll / chinese_bio / msra: tagged files for token classification; "
        "squad: SQuAD v1.1 JSON; amazon_reviews: Blitzer et al.'s .review files, or a directory of them, for "
        "classification)")
    text_column: str = option("text", "column holding the text")
    text_pair_column: str | None = option(None, "second text column for sentence-pair tasks")
    label_column: str = option("label", "column holding the label (string or int)")
    columns: list[str] | None = option(
        None, "field names of csv/tsv files that have no header line, in file order, e.g. [premise, hypothesis, label] "
              "(then every line is a record); null = the first line is the header")
    drop_empty: bool = option(False, "drop rows whose text is empty (one warning counts them) instead of stopping "
                                     "with an error naming the first one")
    eval_fraction: float = option(0.1, "fraction of train held out for eval when no eval file is given")
    budget: float | None = option(None, "label budget: k examples per class (int >= 1) or a fraction (0-1)")
    max_train_examples: int | None = option(None, "cap on training examples after budgeting (stratified)")
    max_eval_examples: int | None = option(None, "cap on eval examples (stratified sample; speeds up grids)")
    max_length: int | None = option(
        None, "maximum tokens per example (longer ones are truncated); null = the strategy's default: 128, "
              "256 for contrastive (SetFit's length for MiniLM)")
    unk_warning: float = option(
        0.05, "warn (once per data set, at train and predict time) when more than this share of a sample's tokens "
              "map to the tokenizer's unknown token, e.g. Chinese text under an English-only model; 0 disables")
    split_seed: int = option(13, "seed for the train/eval split (fixed, so every run shares one eval set)")
    budget_seed: int | None = option(None, "seed for the label-budget sample; null = training.seed (a new sample per seed)")
    stream: list[dict[str, Any]] | None = option(
        None, "continual learning: stages learned in order (instead of train/eval), each {path, test, name, "
              "text_column, text_pair_column, label_column, columns, format, label_map}; eval is held out of path "
              "(eval_fraction), budget and caps apply per stage, name = path's file stem, label_map renames labels, "
              "e.g. {0: negative, 1: positive}, and must name every label (see continual.setting)")
    stream_setting: Literal["auto", "domain", "class", "task"] = option(
        "auto", "a copy of continual.setting, so the task reading data.stream sees it; set continual.setting instead")


@dataclass
class TrainingConfig:
    """Optimisation settings shared by every neural strategy."""

    epochs: int | None = option(None, "passes over the training data; null = the strategy's default (3; 1 for contrastive)")
    batch_size: int | None = option(
        None, "examples per optimisation step (before accumulation); null = the strategy's default (32; 16 for contrastive)")
    eval_batch_size: int = option(32, "examples per evaluation and prediction batch (32: on CPU a batch of 128 "
                                      "long texts ran 5% slower, its activations outgrowing the caches)")
    learning_rate: float | None = option(
        None, "peak learning rate (AdamW); null = the strategy's default (5e-5 for fine-tuning, 1e-3 for lora/bitfit/word_vectors)")
    head_learning_rate: float | None = option(None, "learning rate of the task head; default = learning_rate")
    weight_decay: float = option(0.01, "AdamW weight decay (not applied to biases and LayerNorm)")
    warmup_fraction: float = option(0.1, "fraction of steps with linear warmup, then linear decay")
    max_grad_norm: float | None = option(1.0, "gradient clipping norm; null disables")
    gradient_accumulation_steps: int = option(1, "batches accumulated per optimiser step")
    group_by_length: bool = option(True, "batch examples of similar length (less padding)")
    seed: int = option(42, "seed for initialisation, dropout and batch order")
    eval_every_epoch: bool | None = option(
        None, "evaluate after every epoch and restore the best epoch (true), or only at the end, keeping the last model "
        "(false); null = the strategy's default: true, false for dann/coral/mmd/pseudo_label (the source's held-out "
        "accuracy is a biased guide to the target)")
    early_stopping_patience: int | None = option(None, "stop after this many evals without improvement")
    metric_for_best: str | None = option(None, "eval metric used for best-checkpoint restore; null = the task's (accuracy, entity f1, ...)")
    checkpoint_every: int = option(50, "save a resumable checkpoint every N optimiser steps (0 = epochs only)")
    max_steps: int | None = option(None, "stop after this many optimiser steps (overrides epochs)")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = option(
        "no", "autocast precision of training and inference; auto = bf16 where the CPU/GPU multiplies bf16 natively, "
        "else fp32 (no)")
    log_with: str | None = option(None, "Accelerate tracker (tensorboard, mlflow, wandb) if installed")
    progress: bool = option(True, "show a progress bar")


@dataclass
class ContinualConfig:
    """How the stages of ``data.stream`` relate (the strategy decides how they are learned)."""

    setting: Literal["auto", "domain", "class", "task"] = option(
        "auto", "domain: every stage has the same labels (after label_map); class: labels accumulate into one head, "
                "a stage's label is STAGE:LABEL unless the stage has a label_map; task: a head per stage (labels "
                "always STAGE:LABEL), the stage named at prediction (predict --task NAME); auto: domain when every "
                "stage's label set is equal, else class")


TRAINING_DEFAULTS: dict[str, Any] = {"eval_every_epoch": True, "epochs": 3, "batch_size": 32, "learning_rate": 5e-5}
"""Training settings that are null (unset) until resolved: these values, unless a strategy declares its own."""


def fill_unset(config: Any, defaults: dict[str, Any]) -> Any:
    """The dataclass ``config`` with ``defaults`` for its fields that are None (unset); other keys are skipped."""
    unset = {f.name for f in dataclasses.fields(config) if getattr(config, f.name) is None}
    return dataclasses.replace(config, **{key: value for key, value in defaults.items() if key in unset})


@dataclass
class RunConfig:
    """Everything needed to reproduce one run."""

    model: str = option("minilm-l6", "catalog name, local model directory, or hub id")
    task: ComponentSpec = field(default_factory=lambda: ComponentSpec("classification"))
    strategy: ComponentSpec = field(default_factory=lambda: ComponentSpec("finetune"))
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    continual: ContinualConfig = field(default_factory=ContinualConfig)
    output: str | None = option(None, "run directory to write")
    init_from: str | None = option(
        None, "a finished run directory whose trained encoder (and head, when its labels match) start this run: "
              "sequential transfer, e.g. English first, then k Chinese labels (same model and task)")
    teacher: str | None = option(
        None, "a finished run whose predictions a distillation strategy (distill) learns from; same task and labels")

    def __post_init__(self) -> None:
        self.mirror_continual()

    def mirror_continual(self) -> None:
        """Copy ``continual.setting`` into ``data.stream_setting``: a task's ``read_splits`` sees only ``data``."""
        self.data.stream_setting = self.continual.setting

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> RunConfig:
        if not isinstance(raw, dict):
            raise UserError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
        raw = dict(raw)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in known:
                raise UserError(f"{source}: unknown key '{key}'{closest(key, known)}")
        cfg = cls()
        for key in ("model", "output", "init_from", "teacher"):
            if key in raw:
                setattr(cfg, key, coerce(raw[key], _hints(cls)[key], f"{source}: {key}"))
        for key in ("task", "strategy"):
            if key in raw:
                setattr(cfg, key, ComponentSpec.parse(raw[key], f"{source}: {key}"))
        cfg.data = build_dataclass(DataConfig, raw.get("data") or {}, f"{source}: data")
        cfg.training = build_dataclass(TrainingConfig, raw.get("training") or {}, f"{source}: training")
        cfg.continual = build_dataclass(ContinualConfig, raw.get("continual") or {}, f"{source}: continual")
        if "stream_setting" in (raw.get("data") or {}) and cfg.data.stream_setting != cfg.continual.setting:
            raise UserError(f"{source}: data.stream_setting copies continual.setting; set continual.setting: "
                            f"{cfg.data.stream_setting} instead")
        cfg.mirror_continual()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task": self.task.to_dict(),
            "strategy": self.strategy.to_dict(),
            "data": dataclasses.asdict(self.data),
            "training": dataclasses.asdict(self.training),
            "continual": dataclasses.asdict(self.continual),
            "output": self.output,
            "init_from": self.init_from,
            "teacher": self.teacher,
        }


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build_dataclass(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate ``cls`` from ``values``, coercing types; unknown keys get a suggestion."""
    if not isinstance(values, dict):
        raise UserError(f"{where}: expected a mapping, got {values!r}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise UserError(f"{where}: unknown key '{key}'{closest(key, names)}; valid: {', '.join(names)}")
        kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def coerce(value: Any, hint: Any, where: str) -> Any:  # noqa: PLR0911 - one branch per type kind
    """Convert ``value`` to the annotated type ``hint`` or raise a one-line UserError."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, where)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[-1] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        if isinstance(value, bool) and str(value).lower() in args:  # YAML's true/false for a "true"/"false" choice
            value = str(value).lower()
        if value not in args:
            raise UserError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}{closest(str(value), map(str, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return origin(coerce(v, item, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping (NAME: VALUE), got {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {str(key): coerce(v, item, f"{where}.{key}") for key, v in value.items()}
    if hint is Any:
        return value
    return _coerce_scalar(value, hint, where)


def _coerce_scalar(value: Any, hint: Any, where: str) -> Any:  # noqa: PLR0911 - one branch per type
    """``coerce`` for bool, int, float and str (YAML's own scalars); any other type passes through."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, str):  # PyYAML reads "1e-3" (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise UserError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"training.epochs=2"`` into (["training", "epochs"], 2) using YAML scalars (``no`` stays a string)."""
    import yaml  # local: core stays importable without optional parsing at module import

    if "=" not in text:
        raise UserError(f"--set '{text}': expected KEY=VALUE, e.g. training.epochs=2")
    key, raw = text.split("=", 1)
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


SECTION_TYPES = {"data": DataConfig, "training": TrainingConfig, "continual": ContinualConfig}


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``--set`` style dotted overrides in place and return ``cfg``.

    Strategy/task option keys are stored unvalidated here and checked against the
    component's ``Config`` when it is built (same suggestion message).
    """
    top = [f.name for f in dataclasses.fields(RunConfig)]
    for text in overrides:
        path, value = parse_override(text)
        head, rest = path[0], path[1:]
        where = f"--set {'.'.join(path)}"
        if head in ("task", "strategy"):
            spec: ComponentSpec = getattr(cfg, head)
            if not rest or rest == ["name"]:
                setattr(cfg, head, ComponentSpec(str(value)))  # a new component drops old options
            elif len(rest) == 1:
                spec.options[rest[0]] = value
            elif len(rest) == 2:  # one entry of a mapping option, e.g. strategy.weights.main=0.5
                current = spec.options.get(rest[0])
                spec.options[rest[0]] = {**(current if isinstance(current, dict) else {}), rest[1]: value}
            else:
                raise UserError(f"{where}: too many dots; use {head}.OPTION=VALUE or {head}.OPTION.KEY=VALUE")
        elif head == "data" and len(rest) == 2 and rest[0] in ("sources", "test"):
            current = getattr(cfg.data, rest[0])
            mapping = dict(current) if isinstance(current, dict) else ({} if current is None else {"test": current})
            mapping[rest[1]] = value
            setattr(cfg.data, rest[0], mapping)
        elif path == ["data", "stream_setting"]:
            raise UserError(f"{where}: data.stream_setting copies continual.setting; use --set continual.setting=VALUE")
        elif head in SECTION_TYPES and len(rest) == 1:
            section = getattr(cfg, head)
            hints = _hints(SECTION_TYPES[head])
            if rest[0] not in hints:
                keys = [f"{head}.{k}" for k in hints]
                raise UserError(f"{where}: unknown key{closest('.'.join(path), keys)}")
            setattr(section, rest[0], coerce(value, hints[rest[0]], where))
        elif head in ("model", "output", "init_from", "teacher") and not rest:
            setattr(cfg, head, None if value is None else str(value))
        else:
            keys = top + [f"{s}.{k}" for s, t in SECTION_TYPES.items() for k in _hints(t)]
            raise UserError(f"{where}: unknown key '{'.'.join(path)}'{closest('.'.join(path), keys)}")
    cfg.mirror_continual()
    return cfg


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) rows for a config dataclass."""
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((f.name, str(f.type), default, f.metadata.get("help", "")))
    return rows
