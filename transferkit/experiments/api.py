"""The Python API; the CLI is a thin layer over these functions.

>>> result = train({"model": "minilm-l6", "strategy": "finetune",          # doctest: +SKIP
...                 "data": {"train": "train.tsv", "text_column": "sentence"}, "output": "runs/sst2"})
>>> evaluate_run("runs/sst2", "dev.tsv")["accuracy"]                         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence
from typing import Any

import yaml

from transferkit.core.config import DataConfig, RunConfig, apply_overrides, build_dataclass, read_yaml_file
from transferkit.core.errors import UserError
from transferkit.data import LabelMap
from transferkit.data.qa import read_squad
from transferkit.data.tagging import entities_with_offsets
from transferkit.evaluation import evaluate
from transferkit.experiments import run
from transferkit.experiments.splits import read_examples, read_seq2seq_file, read_tagged_file
from transferkit.serving import NeuralPredictor, load_predictor, write_predictions, write_records
from transferkit.serving.predictor import merge_delta
from transferkit.tasks import TASKS


def load_config_file(path: str) -> RunConfig:
    """Read a run config YAML; errors name the file (and line for YAML syntax errors)."""
    return RunConfig.from_dict(read_yaml_file(path, "config file") or {}, source=path)


def make_config(config: RunConfig | dict | str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """A RunConfig from an object, a dict or a YAML path, with ``key=value`` overrides applied."""
    if isinstance(config, str):
        config = load_config_file(config)
    elif isinstance(config, dict):
        config = RunConfig.from_dict(config)
    elif config is None:
        config = RunConfig()
    return apply_overrides(config, list(overrides))


def train(config: RunConfig | dict | str | None = None, overrides: Sequence[str] = (), resume: bool = False
          ) -> run.RunResult:
    """Train and evaluate one configuration, writing its run directory."""
    return run.train(make_config(config, overrides), resume=resume)


def _run_config(run_dir: str) -> dict[str, Any]:
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        raise UserError(f"{run_dir} is not a finished transferkit run (no config.yaml)")
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _data_config(saved: dict[str, Any], columns: dict[str, str | None]) -> DataConfig:
    data = build_dataclass(DataConfig, saved.get("data", {}), "run config data")
    return dataclasses.replace(data, format="auto", **{k: v for k, v in columns.items() if v is not None})


def evaluate_run(run_dir: str, data: str, text_column: str | None = None, label_column: str | None = None,
                 text_pair_column: str | None = None) -> dict[str, Any]:
    """Metrics (with bootstrap CIs) of a saved run on a labelled file."""
    saved = _run_config(run_dir)
    predictor = load_predictor(run_dir)
    task_cls = TASKS.get(saved["task"]["name"])
    if task_cls.data_kind == "tagged":
        task = predictor.task
        return evaluate(predictor, task, read_tagged_file(data, _data_config(saved, {}), task.config))
    if task_cls.data_kind == "qa":
        return evaluate(predictor, predictor.task, read_squad(data))
    if task_cls.data_kind == "seq2seq":
        task = predictor.task
        return evaluate(predictor, task, read_seq2seq_file(data, _data_config(saved, {}), task.config))
    columns = {"text_column": text_column, "label_column": label_column, "text_pair_column": text_pair_column}
    labels = LabelMap.load(os.path.join(run_dir, "model", "labels.json"))
    examples, _ = read_examples(data, _data_config(saved, columns), labels)
    options = {k: v for k, v in saved["task"].items() if k != "name"}
    task = task_cls(build_dataclass(task_cls.Config, options, "run config task"), labels.names)
    return evaluate(predictor, task, examples)


def predict_file(run_dir: str, input_path: str, output_path: str, text_column: str | None = None,
                 text_pair_column: str | None = None) -> int:
    """Write label + probabilities for every row of ``input_path``; returns the row count."""
    saved = _run_config(run_dir)
    predictor = load_predictor(run_dir)
    kind = TASKS.get(saved["task"]["name"]).data_kind
    if kind == "tagged":
        return _predict_tagged(predictor, saved, input_path, output_path)
    if kind == "qa":
        return _predict_answers(predictor, input_path, output_path)
    if kind == "seq2seq":
        return _predict_summaries(predictor, saved, input_path, output_path)
    data = _data_config(saved, {"text_column": text_column, "text_pair_column": text_pair_column})
    data.label_column = "\x00"  # prediction input: a label column, if any, is ignored
    examples, _ = read_examples(input_path, data, None, require_labels=False)
    write_predictions(output_path, examples.texts, predictor.predict_proba(examples), predictor.labels)
    return len(examples)


def _predict_tagged(predictor: Any, saved: dict[str, Any], input_path: str, output_path: str) -> int:
    """Tags and entities (with character offsets into the space- or ''-joined tokens) per sentence."""
    task = predictor.task
    config = dataclasses.replace(task.config, tag_column=None)  # input needs tokens only; tags, if any, ignored
    sentences = read_tagged_file(input_path, _data_config(saved, {}), config)
    tags = predictor.predict(sentences)
    records = [{"tokens": tokens, "tags": sentence_tags,
                "entities": entities_with_offsets(tokens, sentence_tags, task.config.joiner)}
               for tokens, sentence_tags in zip(sentences.tokens, tags, strict=True)]
    write_records(output_path, records)
    return len(records)


def _predict_answers(predictor: Any, input_path: str, output_path: str) -> int:
    """The best answer span per question: text, score and character offsets into its context."""
    questions = read_squad(input_path, require_answers=False)
    features = predictor.featurize(questions)
    answers = predictor.task.decode(predictor.logits_of(predictor.model, features), features, questions.contexts)
    write_records(output_path, [{"id": qid, "question": question, **answer}
                                for qid, question, answer in zip(questions.ids, questions.questions, answers, strict=True)])
    return len(answers)


def _predict_summaries(predictor: Any, saved: dict[str, Any], input_path: str, output_path: str) -> int:
    """One generated summary per document (a reference summary in the input, if any, is ignored)."""
    documents = read_seq2seq_file(input_path, _data_config(saved, {}), predictor.task.config, require_targets=False)
    summaries = predictor.predict(documents)
    write_records(output_path, [{"row": row, "summary": summary}
                                for row, summary in zip(documents.rows, summaries, strict=True)])
    return len(summaries)


def export_run(run_dir: str, output: str, merge: bool = False) -> str:
    """Write a copy of a run whose model holds full weights (adapter/bias delta merged in).

    The copy needs no base model, predicts identically (up to float rounding) and works
    with ``predict``/``evaluate``.  Written to ``<output>.partial``, renamed when complete.
    """
    if not merge:
        raise UserError("export: pass --merge to write a merged full model")
    _run_config(run_dir)
    predictor = load_predictor(run_dir)
    if not isinstance(predictor, NeuralPredictor):
        raise UserError(f"{run_dir}: a {type(predictor).__name__} model has no adapter to merge")
    merged = merge_delta(predictor)
    if os.path.exists(output):
        raise UserError(f"{output} already exists: choose a new output directory")
    partial = output.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns("model"))
    merged.save(os.path.join(partial, "model"))
    shutil.copy2(os.path.join(run_dir, "model", "labels.json"), os.path.join(partial, "model", "labels.json"))
    os.replace(partial, output)
    return output
