"""The Python API; the CLI is a thin layer over these functions.

>>> result = train({"model": "minilm-l6", "strategy": "finetune",          # doctest: +SKIP
...                 "data": {"train": "train.tsv", "text_column": "sentence"}, "output": "runs/sst2"})
>>> evaluate_run("runs/sst2", "dev.tsv")["accuracy"]                         # doctest: +SKIP
>>> load("runs/sst2").predict(["a gripping film"])                          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Sequence
from typing import Any

from transferkit.core.config import DataConfig, RunConfig, apply_overrides, build_dataclass
from transferkit.core.errors import UserError
from transferkit.core.yaml_config import read_yaml_file
from transferkit.evaluation import evaluate
from transferkit.experiments import run
from transferkit.serving import Model, NeuralPredictor, load_predictor
from transferkit.serving.hub_layout import CONVERTIBLE, plan_layout
from transferkit.serving.model import load_model, read_run_config, saved_task
from transferkit.serving.onnx_export import OnnxExportConfig, check_exportable, check_options, export_onnx
from transferkit.serving.predictor import merge_delta


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


def _data_config(saved: dict[str, Any], columns: dict[str, str | None]) -> DataConfig:
    data = build_dataclass(DataConfig, saved.get("data", {}), "run config data")
    return dataclasses.replace(data, format="auto", **{k: v for k, v in columns.items() if v is not None})


def evaluate_run(run_dir: str, data: str, text_column: str | None = None, label_column: str | None = None,
                 text_pair_column: str | None = None, task_name: str | None = None) -> dict[str, Any]:
    """Metrics (with bootstrap CIs) of a saved run on a labelled file (read by the run's task, or by the task
    ``task_name`` names: a multi-task model's task, a stage of a stream learned in the task setting)."""
    saved = read_run_config(run_dir)
    model = Model(load_predictor(run_dir), saved_task(run_dir, saved), run_dir).for_task(task_name)
    columns = {"text_column": text_column, "label_column": label_column, "text_pair_column": text_pair_column}
    examples = model.task.read(data, _data_config(saved, columns))
    model.predictor.check_inputs(examples, data)
    return evaluate(model.predictor, model.task, examples)


def predict_file(run_dir: str, input_path: str, output_path: str, text_column: str | None = None,
                 text_pair_column: str | None = None, task_name: str | None = None) -> int:
    """Write the task's prediction record for every example of ``input_path``; returns the count.

    Classification: label + class probabilities (.jsonl/.csv/.tsv); NER: tags and entities with
    character offsets; QA: answer text, score and offsets; summarization: the summary.
    ``task_name`` picks one task of a multi-task model (``main`` or None = the run's own), or the stage of a
    stream learned in the task setting (required there).
    """
    saved = read_run_config(run_dir)
    model = Model(load_predictor(run_dir), saved_task(run_dir, saved), run_dir).for_task(task_name)
    data = _data_config(saved, {"text_column": text_column, "text_pair_column": text_pair_column})
    examples = model.task.read(input_path, data, require_targets=False)
    model.predictor.check_inputs(examples, input_path)
    return model.task.write_predictions(output_path, model.predictor.predict(examples), examples)


def load(run_dir: str) -> Model:
    """A finished run as a Python object with ``predict(inputs)`` and ``predict_proba(inputs)``."""
    return load_model(run_dir)


def export_run(run_dir: str, output: str, merge: bool = False, to: str | None = None,
               onnx: OnnxExportConfig | None = None, parity_data: str | None = None) -> str:
    """Export a run: ``merge`` writes a copy of the run whose model holds full weights (adapter/bias delta
    merged in); ``to="transformers"`` writes a model directory that transformers' ``AutoModelFor...`` and
    ``pipeline`` load with the run's labels and logits (a delta is merged first); ``to="onnx"`` writes a
    copy of the run whose model is an ONNX graph (``onnx``: int8, parity threshold), after checking it
    against the PyTorch model on the run's eval data (or ``parity_data``): see ``serving.onnx_export``.

    The merged copy needs no base model, predicts identically (up to float rounding) and works with
    ``predict``/``evaluate``; so does the ONNX copy (run by onnxruntime, its parity in ``model/parity.json``);
    the transformers directory also loads with ``load_predictor``.  Runs whose head has no exact transformers
    equivalent (classification, word vectors ...) are refused with the reason.  Written to
    ``<output>.partial``, renamed when complete.
    """
    if to not in (None, "transformers", "onnx"):
        raise UserError(f"export: unknown format '{to}'; valid: transformers, onnx")
    if not merge and to is None:
        raise UserError("export: pass --merge to write a merged full model, or --format transformers|onnx")
    saved = read_run_config(run_dir)
    if os.path.exists(output):
        raise UserError(f"{output} already exists: choose a new output directory")
    predictor = load_predictor(run_dir)
    if isinstance(predictor, NeuralPredictor) and predictor.meta.get("stages"):
        raise UserError(f"{run_dir}: this run learned a stream in the task setting (stages: "
                        f"{', '.join(predictor.meta['stages'])}), whose predictions need the stage named; an exported "
                        "model predicts without one: predict with --task NAME instead")
    if to == "onnx":
        return _export_onnx(run_dir, output, predictor, saved, onnx or OnnxExportConfig(), parity_data)
    if not isinstance(predictor, NeuralPredictor):
        what = "to merge" if to is None else "for transformers"
        raise UserError(f"{run_dir}: a {type(predictor).__name__} model has no neural weights {what}; {CONVERTIBLE}")
    if to is None or "base_model" in predictor.meta:
        predictor = merge_delta(predictor)
    if to is not None:
        layout = plan_layout(predictor.model, predictor.model.state_dict())
        if layout.architecture is None:
            raise UserError(f"{run_dir}: cannot export to transformers: {layout.reason}; {CONVERTIBLE}")
    return _write_export(run_dir, output, predictor.save, whole_run=to is None)


def _export_onnx(run_dir: str, output: str, predictor: Any, saved: dict[str, Any], options: OnnxExportConfig,
                 parity_data: str | None) -> str:
    """A copy of the run whose ``model/`` is the ONNX graph (+ ``parity.json``), refused below the threshold."""
    check_options(options)
    try:
        check_exportable(predictor)
    except UserError as exc:
        raise UserError(f"{run_dir}: {exc}") from None
    if "base_model" in predictor.meta:
        predictor = merge_delta(predictor)
    examples, source = _parity_examples(run_dir, saved, parity_data)
    exported, parity = export_onnx(predictor, examples, source, options)

    def write(directory: str) -> None:
        exported.save(directory)
        parity.save(directory)

    return _write_export(run_dir, output, write, whole_run=True)


def _parity_examples(run_dir: str, saved: dict[str, Any], parity_data: str | None) -> tuple[Any, str]:
    """The examples the ONNX parity check samples: ``parity_data``, else the run's eval set, re-read as
    training read it (``data.eval``, or the same seeded split of ``data.train``)."""
    task = saved_task(run_dir, saved)
    if parity_data is not None:
        return task.read(parity_data, _data_config(saved, {}), require_targets=False), parity_data
    data = build_dataclass(DataConfig, saved.get("data", {}), "run config data")
    try:
        splits = task.read_splits(data, task.config, saved.get("training", {}).get("seed", 0))
    except (UserError, OSError) as exc:
        raise UserError(f"{run_dir}: cannot read the run's eval data for the ONNX parity check ({exc}); "
                        "pass --parity-data FILE") from None
    return splits.eval, data.eval or f"the eval split of {data.train}"


def _write_export(run_dir: str, output: str, write_model: Callable[[str], None], whole_run: bool) -> str:
    """``write_model`` into ``output`` (a whole copy of the run when ``whole_run``), via ``<output>.partial``."""
    partial = output.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    model_dir = partial
    if whole_run:
        shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns("model"))
        model_dir = os.path.join(partial, "model")
    write_model(model_dir)
    shutil.copy2(os.path.join(run_dir, "model", "labels.json"), os.path.join(model_dir, "labels.json"))
    os.replace(partial, output)
    return output
