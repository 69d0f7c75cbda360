"""The run directory: written under ``<output>.partial`` and renamed only when complete.

A crash (or a kill) therefore never leaves a directory that looks like a finished run;
the ``.partial`` directory keeps the checkpoint that ``--resume`` continues from.  Under a launcher
(``accelerate launch``) only the main process owns it (``writer``): the others read a checkpoint to resume
from and write nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any

import yaml

from transferkit.core.errors import UserError
from transferkit.core.run_files import STATE_DIR
from transferkit.training.checkpoint import has_checkpoint


class RunDirectory:
    """Owns ``<output>.partial`` while a run is in progress.

    >>> with RunDirectory("runs/sst2") as run:   # doctest: +SKIP
    ...     run.write_json("metrics.json", {...})
    """

    def __init__(self, output: str, resume: bool = False, writer: bool = True) -> None:
        self.output = os.path.abspath(output)
        self.writer = writer  # False in every launched process but the main one: it creates, logs and renames nothing
        self.work = self.output.rstrip("/") + ".partial"
        self.checkpoint_dir = os.path.join(self.work, "checkpoint")
        self.state_dir = os.path.join(self.work, STATE_DIR)  # named stages' checkpoints, plans' resumable state
        self.resume = resume
        self.restarted = False
        self._handler: logging.Handler | None = None

    def check(self) -> None:
        """Fail before any work if the output is taken.  ``--resume`` with nothing to resume (a run killed before its
        first checkpoint, or never started) starts from the beginning, so a preempted job can always rerun the same
        command."""
        if os.path.exists(self.output):
            raise UserError(f"output {self.output} already exists; choose another --output or remove it")
        if self.resume and not (has_checkpoint(self.checkpoint_dir) or os.path.isdir(self.state_dir)):
            self.resume, self.restarted = False, True

    def __enter__(self) -> RunDirectory:
        self.check()
        if not self.writer:
            return self
        if not self.resume:
            shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work, exist_ok=True)
        self._handler = logging.FileHandler(os.path.join(self.work, "train.log"), encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("transferkit")
        logger.addHandler(self._handler)
        logger.setLevel(logging.INFO)
        if self.restarted:
            logger.warning("--resume: no checkpoint in %s (killed before its first one?): starting from the beginning",
                           self.work)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.writer:
            return
        logging.getLogger("transferkit").removeHandler(self._handler)
        self._handler.close()
        if exc_type is None:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            shutil.rmtree(self.state_dir, ignore_errors=True)
            os.replace(self.work, self.output)
        elif issubclass(exc_type, UserError) and not self.resume:
            shutil.rmtree(self.work, ignore_errors=True)  # a user mistake leaves nothing behind
        # any other failure keeps <output>.partial with its checkpoint, for --resume

    def path(self, name: str) -> str:
        return os.path.join(self.work, name)

    def write_json(self, name: str, data: Any) -> None:
        with open(self.path(name), "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)

    def write_yaml(self, name: str, data: Any) -> None:
        with open(self.path(name), "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)

    def write_text(self, name: str, text: str) -> None:
        with open(self.path(name), "w", encoding="utf-8") as handle:
            handle.write(text)
