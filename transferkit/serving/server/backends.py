"""The model behind the server: a run's own model (``torch``) or its ONNX export run by onnxruntime (``onnx``).

Both load through ``serving.model.load_model`` (``transferkit.load``), so the server answers with the records
``transferkit predict`` writes: ``Model.records`` = ``task.prediction_records(predictor.predict(examples))``.
Which backend a directory holds is read from its ``model/transferkit.json`` (``kind: onnx`` for an export)
without loading anything, so a wrong ``--backend`` is one line before the server starts.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from typing import Any

from transferkit.core.errors import UserError
from transferkit.core.run_files import META_FILE, model_dir, read_meta
from transferkit.serving.model import MAIN_TASK, Model, load_model, read_run_config
from transferkit.serving.onnx_predictor import ONNX_FILE
from transferkit.serving.server.schemas import FORM_FIELDS
from transferkit.tasks import TASKS


def _meta(run_dir: str) -> dict[str, Any]:
    """The model directory's ``transferkit.json`` (empty for a TF-IDF model, which has none)."""
    directory = model_dir(run_dir)
    return read_meta(directory) if os.path.isfile(os.path.join(directory, META_FILE)) else {}


def check_backend(run_dir: str, backend: str | None) -> str:
    """The backend that serves ``run_dir`` (``backend``, or the one the directory holds when None); a one-line
    error for a directory that is not a finished run or that lacks the chosen backend's files."""
    if not os.path.isdir(run_dir):
        raise UserError(f"run directory not found: {run_dir}")
    read_run_config(run_dir)
    directory = model_dir(run_dir)
    if not any(os.path.isfile(os.path.join(directory, name)) for name in (META_FILE, "tfidf.json")):
        raise UserError(f"{run_dir} is not a transferkit run (no model/{META_FILE} or model/tfidf.json)")
    held = "onnx" if _meta(run_dir).get("kind") == "onnx" else "torch"
    if backend == "onnx" and held != "onnx":
        raise UserError(f"--backend onnx: {run_dir} holds no ONNX model (model/{ONNX_FILE}); write one with "
                        f"`transferkit export {run_dir} --format onnx -o DIR` and serve DIR")
    if backend == "torch" and held != "torch":
        raise UserError(f"--backend torch: {run_dir} holds only an ONNX graph (an export); serve it with --backend "
                        "onnx, or serve the run it was exported from")
    if held == "onnx" and not os.path.isfile(os.path.join(directory, ONNX_FILE)):
        raise UserError(f"{run_dir}: an ONNX export without model/{ONNX_FILE}: export the run again")
    if held == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        raise UserError("--backend onnx needs onnxruntime: pip install 'transferkit[serve,export]'")
    return held


def version() -> str:
    """The installed transferkit's version."""
    try:
        return importlib.metadata.version("transferkit")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Backend:
    """A loaded run, by task: each task's ``Model`` (a multi-task run's other heads on demand) and its records.

    Args:
        model: the run's model (``load_model``).
        name: ``torch`` or ``onnx``.
    """

    def __init__(self, model: Model, name: str) -> None:
        self.model, self.name = model, name
        self.meta = _meta(model.run_dir)
        self._models = {MAIN_TASK: model}

    def model_for(self, task: str | None) -> Model:
        """The model answering ``task`` (None: the run's own); a one-line error for a task the run lacks."""
        name = task or MAIN_TASK
        if name not in self._models:
            self._models[name] = self.model.for_task(name)
        return self._models[name]

    def records(self, task: str, inputs: list[Any]) -> list[dict[str, Any]]:
        """The prediction records of ``inputs`` (runs in the batcher's worker thread)."""
        return self.model_for(task).records(inputs)

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Every task the run answers (``"task": NAME``): its task kind and the request fields it reads.  A
        multi-task run answers ``main`` and each head's task; a stream learned in the task setting, each stage."""
        if self.meta.get("stages"):
            kinds = {name: self.model.task.name for name in self.meta["stages"]}
        else:
            kinds = {MAIN_TASK: self.model.task.name} | {name: head["task"] for name, head in
                                                         self.meta.get("heads", {}).items()}
        return {name: {"task": kind, "inputs": [FORM_FIELDS[form] for form in TASKS.get(kind).input_forms]}
                for name, kind in kinds.items()}

    def info(self) -> dict[str, Any]:
        """The model card's fields: task, labels (id -> label), source model, strategy, stored metrics."""
        run_dir, task = self.model.run_dir, self.model.task
        saved = read_run_config(run_dir)
        path = os.path.join(run_dir, "metrics.json")
        stored: dict[str, Any] = {}
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                stored = json.load(handle)
        splits = {"eval": stored.get("eval") or {}, **{f"test:{name}": metrics for name, metrics in
                                                        (stored.get("test") or {}).items()}}
        return {"transferkit_version": version(), "run": os.path.basename(os.path.abspath(run_dir)),
                "backend": self.name, "quantize": self.meta.get("quantize") if self.name == "onnx" else None,
                "task": task.name, "labels": dict(enumerate(self.model.labels)), "tasks": self.tasks(),
                "source_model": saved.get("model"), "strategy": saved.get("strategy"),
                "max_length": (saved.get("data") or {}).get("max_length"),
                "metrics": {split: {m: metrics[m] for m in type(task).report_metrics if m in metrics}
                            for split, metrics in splits.items() if metrics},
                "selected_on": stored.get("selected_on")}


def load_backend(run_dir: str, backend: str | None) -> Backend:
    """Check, then load, the run's model for serving."""
    name = check_backend(run_dir, backend)
    return Backend(load_model(run_dir), name)
