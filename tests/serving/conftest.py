"""Fixtures of the server tests: a tiny trained classification run, its prediction file, a live uvicorn server."""

from __future__ import annotations

import csv
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from transferkit.core.config import RunConfig
from transferkit.experiments.api import predict_file
from transferkit.experiments.run import train
from transferkit.serving.server.app import default_loader
from transferkit.serving.server.backends import Backend
from transferkit.serving.server.config import ServeConfig
from transferkit.testing import toy_sentences, write_toy_csv


@pytest.fixture(scope="session")
def served_run(tmp_path_factory, tiny_model) -> str:
    """A tiny BERT fine-tuned for one epoch on the toy sentiment data (~5 s)."""
    root = tmp_path_factory.mktemp("served")
    train_file, eval_file = write_toy_csv(str(root / "train.csv"), 120, 0), write_toy_csv(str(root / "eval.csv"), 40, 1)
    output = str(root / "run")
    train(RunConfig.from_dict({
        "model": tiny_model, "strategy": "finetune", "output": output,
        "data": {"train": train_file, "eval": eval_file, "text_column": "sentence", "max_length": 64},
        "training": {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0},
    }))
    return output


@pytest.fixture(scope="session")
def queries(tmp_path_factory) -> dict[str, Any]:
    """20 distinct toy sentences (and pairs of them) in a CSV, as `transferkit predict` reads them."""
    texts = list(dict.fromkeys(text for text, _ in toy_sentences(40, seed=5)))[:20]
    pairs = [(text, texts[-1 - i]) for i, text in enumerate(texts)]
    path = tmp_path_factory.mktemp("queries") / "queries.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "pair"])
        writer.writerows(pairs)
    return {"texts": texts, "pairs": pairs, "path": str(path)}


def predicted_records(run_dir: str, path: str, target: Path, **columns: str) -> list[dict[str, Any]]:
    """The records `transferkit predict` writes for ``path``."""
    predict_file(run_dir, path, str(target), **columns)
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]


class Gate:
    """Holds the model calls until :meth:`open` (so requests pile up in the queue), counting them."""

    def __init__(self) -> None:
        self.entered, self.opened, self.calls = threading.Event(), threading.Event(), 0

    def loader(self, config: ServeConfig) -> Backend:
        backend = default_loader(config)
        records = backend.records

        def held(task: str, inputs: list[Any]) -> list[Any]:
            self.calls += 1
            self.entered.set()
            assert self.opened.wait(60), "the gate was never opened"
            return records(task, inputs)

        backend.records = held  # type: ignore[method-assign]
        return backend

    def open(self) -> None:
        self.opened.set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], seconds: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextmanager
def ready_client(app: Any) -> Iterator[Any]:
    """A TestClient on ``app`` (its lifespan started) once ``/health`` answers 200."""
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        wait_until(lambda: client.get("/health").status_code == 200, what="the model to load")
        yield client


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """``app`` under a real uvicorn on a free loopback port (in a thread); yields its base URL once healthy."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(healthy, what="the server to answer /health with 200")
        yield base
    finally:
        server.should_exit = True
        thread.join(15)
