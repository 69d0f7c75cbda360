"""The files that make a directory a finished run's model, readable without loading it (stdlib only).

A run's ``model/`` holds ``transferkit.json`` (task, labels, strategy, how to rebuild the model) beside
the weights; ``serving`` loads it, and the checks made before any work (a teacher, ``init_from``) read
only this file.
"""

from __future__ import annotations

import json
import os
from typing import Any

from transferkit.core.errors import UserError

META_FILE = "transferkit.json"
STATE_DIR = "checkpoints"
"""Under a run's ``.partial`` directory: named training stages' checkpoints and plans' resumable state
(``RunContext.state_path``); removed when the run finishes."""


def model_dir(run_dir: str) -> str:
    """A run directory's ``model/`` (or ``run_dir`` itself when it is a model directory)."""
    return os.path.join(run_dir, "model") if os.path.isdir(os.path.join(run_dir, "model")) else run_dir


def read_meta(directory: str) -> dict[str, Any]:
    """A saved model directory's ``transferkit.json``."""
    with open(os.path.join(directory, META_FILE), encoding="utf-8") as handle:
        return json.load(handle)


def check_finished_run(run_dir: str, task_name: str, where: str) -> dict[str, Any]:
    """Before any work: ``run_dir`` is a finished neural run of task ``task_name``; returns its meta.
    ``where`` names the setting in errors (``teacher RUN``, ``init_from RUN``)."""
    if not os.path.isfile(os.path.join(model_dir(run_dir), META_FILE)):
        raise UserError(f"{where}: not a finished neural transferkit run (no model/{META_FILE})")
    meta = read_meta(model_dir(run_dir))
    if meta.get("task") != task_name:
        raise UserError(f"{where}: that run's task is '{meta.get('task')}', this run's is '{task_name}'")
    return meta
