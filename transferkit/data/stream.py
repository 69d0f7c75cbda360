"""The continual-learning stream (``data.stream``): classification data sets learned one after another.

A stream is an ordered list of stages (Avalanche's "experiences"), each a mapping ``{path, test, name,
text_column, text_pair_column, label_column, columns, format, label_map}``: ``path`` is the stage's training file,
out of which its eval split is held out exactly as for ``data.train`` (stratified ``data.eval_fraction``,
``data.split_seed``), then ``data.budget`` and the caps apply per stage; ``test`` is the stage's test file, which
the run evaluates after every stage (so every stage needs one).  ``name`` defaults to the file stem of ``path``;
unset columns and format are the run's ``data`` ones.

Labels.  ``label_map`` renames a stage's labels (``{0: negative, 1: positive}``; int and string keys alike), so
stages that spell the same classes differently share them; when given, it must name every label of the stage's
files.  ``continual.setting`` says how the stages' labels relate:

- ``domain``: every stage has the same label set (after ``label_map``): one head over those labels, in the usual
  order (numeric when all are integers, else alphabetical);
- ``class``: labels accumulate into one head, stage by stage in stream order: a stage's label is ``STAGE:LABEL``
  (two stages' ``0`` differ) unless the stage has a ``label_map``, whose names are shared as they are;
- ``task``: a head per stage, the stage named at prediction (task-incremental): every label is ``STAGE:LABEL``, with
  or without ``label_map`` (which only renames within the stage), so no two stages share a row of the output layer;
  no ``data.test`` beside the stages' own (a test set of no stage could not be predicted);
- ``auto``: ``domain`` when every stage's label set is equal, else ``class`` (never ``task``: name it).

Every example is encoded against that union; ``Stage.classes`` are the ids of a stage's own labels.

>>> data = DataConfig(stream=[{"path": "sst.csv", "test": "sst_test.csv"},
...                           {"path": "imdb.csv", "test": "imdb_test.csv"}])    # doctest: +SKIP
>>> read_stream(data, "auto", seed=42).stream.setting                          # doctest: +SKIP
'domain'
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from transferkit.core.config import DataConfig, SourceConfig, build_dataclass, option, test_configs
from transferkit.core.contracts import Splits, Stage, Stream, TextExamples
from transferkit.core.errors import UserError, unknown_name
from transferkit.data._messages import show, show_list
from transferkit.data.labels import LabelMap, normalize_label
from transferkit.data.task_splits import read_examples, read_tests, sample_text_splits, test_data

SETTINGS = ("auto", "domain", "class", "task")


@dataclass
class StageConfig:
    """One stage of ``data.stream``; unset columns and format are the run's ``data`` ones."""

    path: str = option("", "the stage's training file (its eval split is held out of it)")
    test: str | None = option(None, "the stage's test file (required: the run evaluates it after every stage)")
    name: str | None = option(None, "the stage's name (null = the file stem of path)")
    text_column: str | None = option(None, "text column (null = data.text_column)")
    text_pair_column: str | None = option(None, "second text column (null = data.text_pair_column)")
    label_column: str | None = option(None, "label column (null = data.label_column)")
    format: str = option("auto", "file format (auto = data.format)")
    columns: list[str] | None = option(None, "field names of a csv/tsv file without a header line (null = data.columns)")
    label_map: dict[str, str] | None = option(
        None, "rename the stage's labels, e.g. {0: negative, 1: positive}; must name every label of its files")


@dataclass
class _Read:
    """A stage read and sampled, its labels still its own (renamed by ``label_map``, not yet in the union)."""

    index: int
    name: str
    mapped: bool
    labels: LabelMap
    train: TextExamples
    eval: TextExamples
    test: TextExamples
    test_names: list[str]


def read_stream(data: DataConfig, setting: str, seed: int) -> Splits:
    """The stages of ``data.stream`` as one run's :class:`Splits`, with ``stream`` set.

    ``train`` and ``eval`` are every stage's examples concatenated (in stream order), ``tests`` every stage's test set
    under its name plus any ``data.test``, ``labels`` the union of the stages' labels (see the module docstring);
    ``setting`` is ``continual.setting`` (``auto`` is resolved here).  ``seed`` draws the label budget as for
    ``data.train``.  Any problem with a stage is a one-line UserError naming it, before any training.
    """
    if setting not in SETTINGS:
        raise UserError(f"continual.setting: {unknown_name('setting', str(setting), SETTINGS)}")
    specs = stage_configs(data)
    stages = [_read_stage(index, spec, stage, data, seed) for index, (spec, stage) in enumerate(specs)]
    setting = resolve_setting(stages, setting)
    if setting == "task" and test_configs(data.test):
        raise UserError(f"data.test ({', '.join(test_configs(data.test))}): in continual.setting=task every prediction "
                        "names its stage, and these test sets belong to none: make each the test of a stage, or drop it")
    union = _union(stages, setting)
    encoded = [_encode(stage, union, setting) for stage in stages]
    tests = {stage.name: stage.test for stage in encoded}
    tests.update(read_tests(data, lambda path, test: read_examples(path, test, union)[0]))
    return Splits(concat_examples([s.train for s in encoded]), concat_examples([s.eval for s in encoded]), tests,
                  union.names, Stream(setting, encoded))


def stage_configs(data: DataConfig) -> list[tuple[StageConfig, DataConfig]]:
    """Every stage of ``data.stream`` validated, with the ``data`` its files are read with; a stream that cannot be
    read (one stage, a stage without test, duplicate names, ``data.train`` also set ...) is a one-line UserError."""
    if data.train or data.eval:
        key = "data.train" if data.train else "data.eval"
        raise UserError(f"data.stream and {key} are both set: set either (each stage's eval split is held out of "
                        "its own path)")
    raw = data.stream or []
    if len(raw) < 2:
        raise UserError(f"data.stream has {len(raw)} stage(s); a stream needs at least 2 stages (for one data set, "
                        "set data.train)")
    specs = [_stage_config(index, value) for index, value in enumerate(raw)]
    seen: dict[str, int] = {}
    for index, spec in enumerate(specs):
        assert spec.name is not None
        if spec.name in seen:
            raise UserError(f"{_where(index, spec.name)}: same name as data.stream[{seen[spec.name]}]; give one of them "
                            f"another name (data.stream[{index}].name)")
        seen[spec.name] = index
    for name in test_configs(data.test):
        if name in seen:
            raise UserError(f"data.test.{name}: same name as the test set of data.stream[{seen[name]}] ({name}); "
                            "rename one of them")
    stages = [(spec, _stage_data(data, spec)) for spec in specs]
    _check_inputs(stages)
    return stages


def _stage_config(index: int, value: object) -> StageConfig:
    """``data.stream[index]`` as a :class:`StageConfig`: a path and a test file; the name defaults to the stem."""
    key = f"data.stream[{index}]"
    if not isinstance(value, dict):
        raise UserError(f"{key}: expected a mapping {{path: FILE, test: FILE, ...}}, got {show(value)}")
    spec = build_dataclass(StageConfig, value, key)
    if not spec.path:
        raise UserError(f"{key}: no path; give the stage's training file, e.g. {{path: FILE, test: FILE}}")
    if not spec.name:
        spec.name = os.path.splitext(os.path.basename(str(spec.path).rstrip("/")))[0]
    if not spec.test:
        raise UserError(f"{_where(index, spec.name)}: no test file for {spec.path}; every stage needs one (the run "
                        f"evaluates every stage's test set after every stage): set {key}.test")
    return spec


def _where(index: int, name: str | None) -> str:
    return f"data.stream[{index}] ({name})"


def _stage_data(data: DataConfig, spec: StageConfig) -> DataConfig:
    """``data`` with the columns and format the stage sets for itself."""
    return test_data(data, SourceConfig(spec.path, None, spec.text_column, spec.text_pair_column, spec.label_column,
                                        spec.format, spec.columns))


def _check_inputs(stages: list[tuple[StageConfig, DataConfig]]) -> None:
    """Every stage gives one text, or every stage a text pair: the examples are learned by one model."""
    def reads(stage: DataConfig) -> str:
        return "single texts" if stage.text_pair_column is None else f"text pairs ({stage.text_pair_column})"

    first_spec, first = stages[0]
    for index, (spec, stage) in enumerate(stages):
        if (stage.text_pair_column is None) != (first.text_pair_column is None):
            raise UserError(f"{_where(index, spec.name)} reads {reads(stage)} but {_where(0, first_spec.name)} "
                            f"{reads(first)}; every stage needs the same inputs: set or unset "
                            f"data.stream[{index}].text_pair_column")


@contextmanager
def _in_stage(where: str, key: str) -> Iterator[None]:
    """Prefix a reader's UserError with the stage; a hint to set ``data.FIELD`` names the stage's own field."""
    try:
        yield
    except UserError as exc:
        message = re.sub(r"\bdata\.(text_column|text_pair_column|label_column|columns|format)\b", rf"{key}.\1", str(exc))
        raise UserError(f"{where}: {message}") from None


def _read_stage(index: int, spec: StageConfig, stage: DataConfig, data: DataConfig, seed: int) -> _Read:
    """Read a stage's train and test files, rename their labels, hold out eval and sample as for ``data.train``."""
    key = f"data.stream[{index}]"
    with _in_stage(_where(index, spec.name), key):
        train, raw = read_examples(spec.path, stage, None)
        test, test_raw = read_examples(str(spec.test), stage, None)
        assert raw is not None and test_raw is not None and train.labels is not None and test.labels is not None
        train_names = _rename(raw.decode(train.labels), spec.label_map, train.source, key)
        test_names = _rename(test_raw.decode(test.labels), spec.label_map, test.source, key)
        labels = LabelMap.from_values(train_names, train.source)
        train = dataclasses.replace(train, labels=labels.encode(train_names, train.source, train.rows))
        train, eval_examples = sample_text_splits(train, None, labels, data, seed)
    assert spec.name is not None
    return _Read(index, spec.name, spec.label_map is not None, labels, train, eval_examples, test, test_names)


def _rename(names: list[str], label_map: dict[str, str] | None, source: str, key: str) -> list[str]:
    """``names`` renamed by the stage's ``label_map`` (keys compared as labels: ``0``, ``"0"`` and ``0.0`` alike);
    a label the map does not name is an error naming the file."""
    if label_map is None:
        return names
    mapping = {normalize_label(old) or str(old): normalize_label(new) or str(new) for old, new in label_map.items()}
    unmapped = [name for name in dict.fromkeys(names) if name not in mapping]
    if unmapped:
        raise UserError(f"{source}: label(s) {show_list(unmapped)} not in label_map (it maps {show_list(mapping)}); "
                        f"add them to {key}.label_map")
    return [mapping[name] for name in names]


def resolve_setting(stages: list[_Read], setting: str) -> str:
    """``domain``, ``class`` or ``task`` for ``continual.setting`` (``task`` as it is): ``auto`` is ``domain`` when every stage's labels (after
    ``label_map``) are equal, else ``class``; ``domain`` with stages whose labels differ is an error naming both."""
    first = stages[0]
    differing = next((stage for stage in stages if set(stage.labels.names) != set(first.labels.names)), None)
    if setting == "auto":
        return "class" if differing is not None else "domain"
    if setting == "domain" and differing is not None:
        raise UserError(
            f"continual.setting=domain needs every stage to have the same labels, but "
            f"{_where(differing.index, differing.name)} has {show_list(differing.labels.names)} and "
            f"{_where(0, first.name)} {show_list(first.labels.names)}: rename them onto shared names with "
            f"data.stream[{differing.index}].label_map, or set continual.setting=class")
    return setting


def _prefix(stage: _Read, setting: str) -> str:
    """What a stage's label names start with in the union: ``STAGE:`` for an unmapped stage under ``class``, for
    every stage under ``task`` (each stage its own rows of the output layer)."""
    return f"{stage.name}:" if setting == "task" or (setting == "class" and not stage.mapped) else ""


def _union(stages: list[_Read], setting: str) -> LabelMap:
    """The run's labels: the shared ones (``domain``) or every stage's in stream order (``class``, ``task``)."""
    names = [_prefix(stage, setting) + name for stage in stages for name in stage.labels.names]
    return LabelMap(list(dict.fromkeys(names)))


def _encode(stage: _Read, union: LabelMap, setting: str) -> Stage:
    """The stage with every label an id into ``union``; ``classes`` are the ids of the stage's own labels."""
    prefix = _prefix(stage, setting)
    ids = union.encode([prefix + name for name in stage.labels.names])

    def relabel(examples: TextExamples) -> TextExamples:
        assert examples.labels is not None
        return dataclasses.replace(examples, labels=[ids[label] for label in examples.labels])

    with _in_stage(_where(stage.index, stage.name), f"data.stream[{stage.index}]"):
        test_ids = union.encode([prefix + name for name in stage.test_names], stage.test.source, stage.test.rows)
    test = dataclasses.replace(stage.test, labels=test_ids)
    return Stage(stage.name, relabel(stage.train), relabel(stage.eval), test, sorted(ids))


def concat_examples(parts: list[TextExamples]) -> TextExamples:
    """The examples of ``parts`` one after another (all with text pairs, or none); ``source`` names every part."""
    if not parts:
        return TextExamples([])
    pairs = [part.text_pairs for part in parts]
    if any(pair is None for pair in pairs) and not all(pair is None for pair in pairs):
        raise ValueError("concat_examples: some parts have text pairs and some do not")

    def joined(values: list[list | None]) -> list | None:
        return None if any(value is None for value in values) else [item for value in values for item in value or []]

    return TextExamples(
        texts=[text for part in parts for text in part.texts],
        labels=joined([part.labels for part in parts]),
        text_pairs=joined(pairs),
        rows=joined([part.rows for part in parts]),
        source=" + ".join(dict.fromkeys(part.source for part in parts)),
    )
