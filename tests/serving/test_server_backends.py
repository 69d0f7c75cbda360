"""``transferkit serve`` beyond one classification head: an int8 ONNX export on onnxruntime, a multi-task run's
tasks (``{"task": NAME}``, token lists for its NER head), and the command's one-line errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import one_line_error, run_cli
from tests.serving.conftest import free_port, predicted_records, ready_client, wait_until
from transferkit.core.config import RunConfig
from transferkit.experiments.api import export_run
from transferkit.experiments.run import train
from transferkit.serving.onnx_export import OnnxExportConfig
from transferkit.serving.server import ServeConfig, create_app
from transferkit.serving.server.backends import check_backend
from transferkit.testing import write_toy_conll


@pytest.fixture(scope="module")
def int8_export(served_run, tmp_path_factory) -> str:
    return export_run(served_run, str(tmp_path_factory.mktemp("int8") / "onnx"), to="onnx",
                      onnx=OnnxExportConfig(quantize="int8", min_agreement=0.9))


def test_an_int8_onnx_export_is_served_by_onnxruntime(int8_export, queries, tmp_path) -> None:
    expected = predicted_records(int8_export, queries["path"], tmp_path / "onnx.jsonl", text_column="sentence")
    with ready_client(create_app(ServeConfig(int8_export, backend="onnx"))) as client:
        answer = client.post("/predict", json={"texts": queries["texts"]})
        assert answer.status_code == 200 and answer.json()["predictions"] == expected, answer.text
        info = client.get("/info").json()
        assert info["backend"] == "onnx" and info["quantize"] == "int8"


def test_the_backend_must_match_the_files(served_run, int8_export) -> None:
    assert check_backend(served_run, None) == "torch" and check_backend(int8_export, None) == "onnx"
    one_line_error(lambda: check_backend(served_run, "onnx"), "--backend onnx", "holds no ONNX model",
                   "transferkit export")
    one_line_error(lambda: check_backend(int8_export, "torch"), "--backend torch", "holds only an ONNX graph")


def test_a_multitask_run_answers_each_task_by_name(tiny_model, toy_files, tmp_path) -> None:
    conll = write_toy_conll(str(tmp_path / "people.conll"), 120, seed=0)
    output = str(tmp_path / "mtl")
    train(RunConfig.from_dict({
        "model": tiny_model, "strategy": {"name": "multitask", "sampling": "round_robin"}, "output": output,
        "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence", "max_length": 64,
                 "sources": {"ner": {"path": conll, "task": "token_classification"}}},
        "training": {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0}}))
    query = tmp_path / "query.conll"
    query.write_text("alice NN O\nvisited NN O\nparis NN O\n\nbob NN O\nstayed NN O\n\n")
    expected = predicted_records(output, str(query), tmp_path / "tags.jsonl", task_name="ner")
    with ready_client(create_app(ServeConfig(output))) as client:
        tagged = client.post("/predict", json={"tokens": [["alice", "visited", "paris"], ["bob", "stayed"]],
                                               "task": "ner"})
        assert tagged.status_code == 200 and tagged.json()["predictions"] == expected, tagged.text
        assert client.post("/predict", json={"texts": ["alice visited paris"], "task": "ner"}).status_code == 200
        assert client.post("/predict", json={"texts": ["a great film"]}).json()["predictions"][0]["label"]
        wrong = client.post("/predict", json={"pairs": [["a", "b"]], "task": "ner"}).json()["error"]
        assert "'token_classification' reads tokens or texts, not pairs" in wrong
        assert "reads texts or pairs, not tokens" in client.post("/predict", json={"tokens": [["a"]]}).json()["error"]
        tasks = client.get("/info").json()["tasks"]
        assert tasks["ner"] == {"task": "token_classification", "inputs": ["tokens", "texts"]}


@pytest.mark.parametrize("args, fragment", [
    (["/no/such/run"], "run directory not found"),
    (["{run}", "--backend", "onnx"], "holds no ONNX model"),
    (["{run}", "--backend", "tensorflow"], "unknown backend 'tensorflow'"),
    (["{run}", "--max-batch-size", "0"], "--max-batch-size must be >= 1"),
    (["{run}", "--token-file", "/no/such/token"], "no such file"),
    (["{run}", "--port", "70000"], "--port must be between"),
])
def test_serve_mistakes_are_one_line_errors(served_run, args, fragment, capsys, monkeypatch) -> None:
    code, _, err = run_cli(["serve", *[a.format(run=served_run) for a in args]], capsys, monkeypatch)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_a_port_in_use_is_a_one_line_error(served_run, capsys, monkeypatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = run_cli(["serve", served_run, "--port", str(taken.getsockname()[1])], capsys, monkeypatch)
    assert code == 2 and "cannot listen on 127.0.0.1" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_the_command_serves_until_interrupted(served_run, tmp_path: Path) -> None:
    """A real `transferkit serve` process: healthy, answers with the token, stops cleanly on Ctrl-C."""
    (tmp_path / "token").write_text("t0ken\n")
    port = free_port()
    command = [sys.executable, "-m", "transferkit.cli.main", "serve", served_run, "--port", str(port),
               "--token-file", str(tmp_path / "token")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()
                return False

        wait_until(healthy, 90, "the served model")
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"texts": ["superb film"]},
                            headers={"Authorization": "Bearer t0ken"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["predictions"][0]["text"] == "superb film"
    finally:
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0 and time.monotonic() - started < 30, err
    assert "serving" in err and "Traceback" not in err, err
