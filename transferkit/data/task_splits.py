"""Read and validate the train/eval/test files of a run, then split and budget the training set.

One loader per kind of data; each task's ``read_splits`` calls its own (the task decides,
nobody switches on it).  Test sets: ``data.test`` is one file (named ``test``) or a mapping
name -> file (or -> ``{path, columns...}``); each is read with the same reader.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from transferkit.core.config import DataConfig, SourceConfig, test_configs
from transferkit.core.contracts import Splits, TextExamples
from transferkit.core.errors import UserError
from transferkit.data import (
    LabelMap,
    apply_budget,
    cap_examples,
    check_trainable,
    read_table,
    stratified_split,
    to_examples,
)
from transferkit.data.qa import read_squad, split_by_title
from transferkit.data.seq2seq import Seq2SeqExamples, read_lines, read_pairs, read_parallel
from transferkit.data.tagging import TAGGED_FORMATS, TaggedSentences, read_tagged


def read_examples(path: str, data: DataConfig, label_map: LabelMap | None, require_labels: bool = True
                  ) -> tuple[TextExamples, LabelMap | None]:
    """Read one file with the configured columns (labels encoded against ``label_map`` if given)."""
    table = read_table(path, data.format, data.columns)
    return to_examples(table, data.text_column, data.label_column, data.text_pair_column, label_map, require_labels,
                       data.drop_empty)


def require_train(data: DataConfig) -> str:
    """The training file, or the one "no training data" error every task gives."""
    if data.stream is not None:
        raise UserError("data.stream (continual learning) is read by the classification task only; "
                        "set data.train instead")
    if not data.train:
        raise UserError("no training data: pass --train FILE or set data.train in the config")
    return data.train


def read_tests(data: DataConfig, read: Callable[[str, DataConfig], Any]) -> dict[str, Any]:
    """Named test sets: ``data.test`` as one file (named ``test``) or a mapping name -> file or
    ``{path, text_column, text_pair_column, label_column, format, columns}`` (each test set may have
    its own columns, e.g. one file per language from different corpora; unset ones are ``data``'s)."""
    return {name: read(spec.path, test_data(data, spec)) for name, spec in test_configs(data.test).items()}


def test_data(data: DataConfig, spec: SourceConfig) -> DataConfig:
    """``data`` with the columns and format a test set sets for itself."""
    columns = {"text_column": spec.text_column, "text_pair_column": spec.text_pair_column,
               "label_column": spec.label_column, "columns": spec.columns}
    overrides: dict[str, Any] = {key: value for key, value in columns.items() if value is not None}
    if spec.format != "auto":
        overrides["format"] = spec.format
    return dataclasses.replace(data, **overrides)


def load_text_splits(data: DataConfig, seed: int = 0) -> Splits:
    """Classification: train (after split, budget and cap), eval and test examples, all validated.

    ``seed`` (the run's training seed) draws the label budget unless ``data.budget_seed`` is set,
    so repeating a run over seeds also repeats it over different labelled samples.
    """
    train, labels = read_examples(require_train(data), data, None)
    assert labels is not None
    eval_examples = read_examples(data.eval, data, labels)[0] if data.eval else None
    train, eval_examples = sample_text_splits(train, eval_examples, labels, data, seed)
    return Splits(train, eval_examples, read_tests(data, lambda path, test: read_examples(path, test, labels)[0]), labels.names)


def sample_text_splits(train: TextExamples, eval_examples: TextExamples | None, labels: LabelMap, data: DataConfig,
                       seed: int) -> tuple[TextExamples, TextExamples]:
    """(train, eval) of labelled ``train``: without ``eval_examples`` a stratified ``data.eval_fraction`` of train
    (``data.split_seed``) is held out; then ``budget`` and ``max_train_examples`` draw from train (``seed``, or
    ``data.budget_seed``) and ``max_eval_examples`` from eval (``split_seed``), each stratified."""
    check_trainable(train, labels)
    assert train.labels is not None
    if eval_examples is None:
        if not 0 < data.eval_fraction < 1:
            raise UserError(f"data.eval_fraction must be between 0 and 1, got {data.eval_fraction}")
        train_idx, eval_idx = stratified_split(train.labels, data.eval_fraction, data.split_seed)
        train, eval_examples = train.subset(train_idx), train.subset(eval_idx)
    sample_seed = seed if data.budget_seed is None else data.budget_seed
    if data.budget is not None:
        train = train.subset(apply_budget(train.labels, data.budget, sample_seed, labels.names, train.source))
    if data.max_train_examples is not None:
        train = train.subset(cap_examples(train.labels, data.max_train_examples, sample_seed))
    if data.max_eval_examples is not None:
        eval_examples = eval_examples.subset(cap_examples(eval_examples.labels, data.max_eval_examples, data.split_seed))
    check_trainable(train, labels)
    return train, eval_examples


def _sample(train: Any, eval_examples: Any, data: DataConfig, seed: int, eval_rng: np.random.Generator
            ) -> tuple[Any, Any]:
    """Unstratified budget and caps (counts of examples, or a fraction) for tasks without class labels.

    ``budget`` then ``max_train_examples`` draw from the training set with the budget seed;
    ``max_eval_examples`` draws from the eval set with ``eval_rng`` (fixed by the split seed).
    """
    sample = np.random.default_rng(seed if data.budget_seed is None else data.budget_seed)
    for cap in (data.budget, data.max_train_examples):
        if cap is not None and cap < len(train):
            count = int(cap) if cap >= 1 else max(1, round(cap * len(train)))
            train = train.subset(np.sort(sample.permutation(len(train))[:count]))
    if data.max_eval_examples is not None and data.max_eval_examples < len(eval_examples):
        eval_examples = eval_examples.subset(np.sort(eval_rng.permutation(len(eval_examples))[: data.max_eval_examples]))
    return train, eval_examples


def _random_split(train: Any, read: Callable[[str, DataConfig], Any], data: DataConfig, seed: int) -> tuple[Any, Any, dict[str, Any]]:
    """(train, eval, test) for tasks without class labels: the eval file, else a seeded random
    ``eval_fraction`` of train (``split_seed``); then budget and caps (:func:`_sample`)."""
    rng = np.random.default_rng(data.split_seed)
    if data.eval:
        eval_examples = read(data.eval, data)
    else:
        if not 0 < data.eval_fraction < 1:
            raise UserError(f"data.eval_fraction must be between 0 and 1, got {data.eval_fraction}")
        order = rng.permutation(len(train))
        cut = max(1, round(len(train) * data.eval_fraction))
        train, eval_examples = train.subset(np.sort(order[cut:])), train.subset(np.sort(order[:cut]))
    train, eval_examples = _sample(train, eval_examples, data, seed, rng)
    return train, eval_examples, read_tests(data, read)


def read_tagged_file(path: str, data: DataConfig, task_config: Any) -> TaggedSentences:
    fmt = data.format if data.format in TAGGED_FORMATS else "auto"
    return read_tagged(path, fmt, task_config.token_column, task_config.tag_column)


def tag_labels(train: TaggedSentences, scheme: str = "iob2") -> LabelMap:
    """``O`` + B-/I- (B-/I-/E-/S- for BIOES) for every entity type in the training tags."""
    types = sorted({tag[2:] for tag in train.tag_set() if tag != "O"})
    prefixes = "BIES" if scheme == "bioes" else "BI"
    return LabelMap(["O", *[f"{prefix}-{kind}" for kind in types for prefix in prefixes]])


def load_tagged_splits(data: DataConfig, seed: int, task_config: Any) -> Splits:
    """Sentences for token classification; ``budget`` and caps count sentences (int) or a fraction."""
    train = read_tagged_file(require_train(data), data, task_config)
    if train.tags is None:
        raise UserError(f"{data.train}: no tag column; token classification needs token and tag columns")
    train, eval_examples, tests = _random_split(train, lambda path, spec: read_tagged_file(path, spec, task_config), data, seed)
    return Splits(train, eval_examples, tests, tag_labels(train, task_config.scheme).names)


def load_qa_splits(data: DataConfig, seed: int) -> Splits:
    """Questions for extractive QA; without an eval file, whole articles (titles) are held out.

    ``eval_fraction`` of the titles (at least one, the last ones in file order) become the
    eval set, so no context is shared between train and eval; ``budget`` and caps count questions.
    """
    fmt = {"squad": "json", "jsonl": "jsonl"}.get(data.format, "auto")
    train = read_squad(require_train(data), fmt)
    if data.eval:
        eval_examples = read_squad(data.eval, fmt)
    else:
        titles = len(dict.fromkeys(train.titles))
        if titles < 2:
            raise UserError(f"{data.train}: {titles} article title(s); hold out articles needs >= 2 or pass --eval FILE")
        train, eval_examples = split_by_title(train, max(1, round(titles * data.eval_fraction)))
    train, eval_examples = _sample(train, eval_examples, data, seed, np.random.default_rng(data.split_seed))
    return Splits(train, eval_examples, read_tests(data, lambda path, _: read_squad(path, fmt)), ["start", "end"])


def read_seq2seq_file(path: str, data: DataConfig, task_config: Any, require_targets: bool = True
                      ) -> Seq2SeqExamples:
    """Document/summary pairs: a table (csv/tsv/jsonl/HF) with the task's columns, or parallel text files.

    Parallel files are found by name: ``X.source`` pairs with ``X.target``, ``src.*`` with ``tgt.*``.
    """
    target_path = parallel_target(path)
    if target_path is not None:
        if not require_targets:
            documents = read_lines(path)
            return Seq2SeqExamples(documents, None, list(range(1, len(documents) + 1)), path)
        if not os.path.exists(target_path):
            raise UserError(f"{path}: parallel source file without its targets: expected {target_path}")
        return read_parallel(path, target_path)
    target = task_config.target_column if require_targets else None
    fmt = data.format if data.format in ("csv", "tsv", "jsonl", "hf") else "auto"
    return read_pairs(path, fmt, task_config.source_column, target, data.columns)


def parallel_target(path: str) -> str | None:
    """The targets file of a plain-text source file (``X.source`` -> ``X.target``, ``src.*`` -> ``tgt.*``), else None."""
    folder, name = os.path.split(path)
    if name.endswith(".source"):
        return os.path.join(folder, name[: -len(".source")] + ".target")
    if name.startswith("src.") or name.startswith("src-") or name.startswith("src_"):
        return os.path.join(folder, "tgt" + name[3:])
    return None


def load_seq2seq_splits(data: DataConfig, seed: int, task_config: Any) -> Splits:
    """Pairs for summarization; without an eval file a seeded random ``eval_fraction`` is held out.

    ``budget`` and caps count pairs (int) or a fraction.
    """
    train = read_seq2seq_file(require_train(data), data, task_config)
    train, eval_examples, tests = _random_split(train, lambda path, spec: read_seq2seq_file(path, spec, task_config), data,
                                                seed)
    return Splits(train, eval_examples, tests, [])


def class_counts(examples: TextExamples, labels: LabelMap) -> dict[str, int]:
    counts = np.bincount(np.asarray(examples.labels, dtype=np.int64), minlength=len(labels.names))
    return {name: int(c) for name, c in zip(labels.names, counts, strict=True)}
