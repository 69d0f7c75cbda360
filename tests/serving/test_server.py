"""``transferkit serve``'s app: the records of `transferkit predict`, health while loading, the token, the limits,
malformed input, a full queue, batching across concurrent requests, the schema and the metrics."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import Gate, live_server, predicted_records, ready_client, wait_until
from transferkit.core.errors import UserError
from transferkit.serving.server import ServeConfig, create_app


@pytest.fixture(scope="module")
def client(served_run):
    with ready_client(create_app(ServeConfig(served_run))) as client:
        yield client


def metric(text: str, name: str) -> float:
    """The value of one Prometheus sample (name with its labels, as exposed)."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, (name, text)
    return float(match.group(1))


def test_texts_and_pairs_get_the_records_of_transferkit_predict(client, served_run, queries, tmp_path) -> None:
    expected = predicted_records(served_run, queries["path"], tmp_path / "texts.jsonl", text_column="sentence")
    answer = client.post("/predict", json={"texts": queries["texts"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == expected
    pairs = predicted_records(served_run, queries["path"], tmp_path / "pairs.jsonl", text_column="sentence",
                              text_pair_column="pair")
    answer = client.post("/predict", json={"pairs": [list(pair) for pair in queries["pairs"]]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pairs and pairs != expected  # the second text counts


def test_health_is_503_until_the_model_is_loaded(served_run) -> None:
    gate = threading.Event()

    def slow_loader(config):
        assert gate.wait(60)
        from transferkit.serving.server.app import default_loader

        return default_loader(config)

    with TestClient(create_app(ServeConfig(served_run), loader=slow_loader)) as client:
        loading = client.get("/health")
        assert loading.status_code == 503 and loading.json()["status"] == "loading"
        refused = client.post("/predict", json={"texts": ["a film"]})
        assert refused.status_code == 503 and refused.json()["error_type"] == "not_ready"
        assert client.get("/info").status_code == 503 and client.get("/metrics").status_code == 200
        gate.set()
        wait_until(lambda: client.get("/health").status_code == 200, what="the model to load")
        assert client.post("/predict", json={"texts": ["a film"]}).status_code == 200


def test_a_model_that_fails_to_load_says_why_on_health(served_run) -> None:
    def broken(config):
        raise UserError("model/model.safetensors is damaged")

    with TestClient(create_app(ServeConfig(served_run), loader=broken)) as client:
        wait_until(lambda: client.get("/health").json()["status"] == "failed", what="the load to fail")
        health = client.get("/health")
        assert health.status_code == 503 and "damaged" in health.json()["error"]
        assert client.post("/predict", json={"texts": ["a film"]}).json()["error"] == health.json()["error"]


def test_a_missing_or_wrong_token_is_401(served_run, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    with TestClient(create_app(ServeConfig(served_run, token_file=str(token_file)))) as client:
        assert client.get("/health").status_code in (200, 503) and client.get("/metrics").status_code == 200
        wait_until(lambda: client.get("/health").status_code == 200, what="the model to load")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            answer = client.post("/predict", json={"texts": ["a film"]}, headers=headers)
            assert answer.status_code == 401 and answer.json()["error_type"] == "unauthorized", headers
            assert answer.headers["www-authenticate"] == "Bearer"
        assert client.post("/predict", content=b"{oops", headers={"Authorization": "Bearer x"}).status_code == 401
        assert client.get("/info").status_code == 401
        good = {"Authorization": "Bearer s3cret-token"}
        assert client.post("/predict", json={"texts": ["a film"]}, headers=good).status_code == 200
        assert client.get("/info", headers=good).status_code == 200


@pytest.mark.parametrize("token", ["", "two words"])
def test_an_unusable_token_file_is_a_one_line_error(served_run, tmp_path, token) -> None:
    path = tmp_path / "token"
    path.write_text(token)
    with pytest.raises(UserError, match="--token-file"):
        create_app(ServeConfig(served_run, token_file=str(path)))
    with pytest.raises(UserError, match="no such file"):
        create_app(ServeConfig(served_run, token_file=str(tmp_path / "absent")))


def test_oversize_requests_are_413_with_a_json_error(served_run) -> None:
    with ready_client(create_app(ServeConfig(served_run, max_texts=4, max_chars=50))) as client:
        cases = [{"texts": ["a film"] * 5}, {"texts": ["a film", "x" * 51]}, {"pairs": [["a film", "y" * 60]]}]
        for body in cases:
            answer = client.post("/predict", json=body)
            assert answer.status_code == 413 and answer.json()["error_type"] == "payload_too_large", body
            assert "\n" not in answer.json()["error"]
        huge = json.dumps({"texts": ["z" * 20_000]}).encode()  # refused from its Content-Length, unread
        answer = client.post("/predict", content=huge, headers={"content-type": "application/json"})
        assert answer.status_code == 413 and "bytes" in answer.json()["error"]
        assert client.post("/predict", json={"texts": ["a film"] * 4}).status_code == 200


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "malformed JSON"),
    (b"", "Field required"),
    (b"[1, 2]", "valid dictionary"),
    (b'{"texts": "a film"}', "texts: Input should be a valid list"),
    (b'{"texts": [1, 2]}', "texts[0]: Input should be a valid string"),
    (b'{"texts": []}', "texts is empty"),
    (b'{"texts": ["  "]}', "texts[0] is empty"),
    (b'{"texts": ["ok", "\\ud800 lone"]}', "texts[1] is not valid Unicode text"),
    (b'{"texts": null}', "no inputs"),
    (b'{"pairs": [["a", "b", "c"]]}', "pairs[0]"),
    (b'{"texts": ["a"], "pairs": [["a", "b"]]}', "not texts and pairs"),
    (b'{"tokens": [["a", "film"]]}', "reads texts or pairs, not tokens"),
    (b'{"questions": ["who?"]}', "reads texts or pairs"),
    (b'{"texts": ["a"], "task": "nope"}', "no task 'nope'"),
    (b'{"texts": ["a"], "extra": 1}', "extra: Extra inputs are not permitted"),
])
def test_malformed_requests_are_422_with_a_one_line_json_error(client, body, fragment) -> None:
    answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert error["error_type"] == "validation" and fragment in error["error"] and "\n" not in error["error"], error
    assert client.get("/health").status_code == 200  # the server lives on


def test_unknown_paths_and_methods_answer_json(client) -> None:
    assert client.get("/nope").json()["error_type"] == "not_found"
    assert client.get("/predict").status_code == 405


def test_a_full_queue_is_429_and_the_waiting_requests_still_get_answers(served_run) -> None:
    gate = Gate()
    app = create_app(ServeConfig(served_run, max_queue=1, max_batch_size=1), loader=gate.loader)
    with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
        wait_until(lambda: client.get("/health").status_code == 200, what="the model to load")
        running = pool.submit(client.post, "/predict", json={"texts": ["superb film"]})
        assert gate.entered.wait(30)
        waiting = pool.submit(client.post, "/predict", json={"texts": ["dull film"]})
        wait_until(lambda: app.state.server.batcher.depth() == 1, what="the second request to queue")
        refused = client.post("/predict", json={"texts": ["a third film"]})
        assert refused.status_code == 429 and refused.json()["error_type"] == "overloaded", refused.text
        gate.open()
        assert running.result(30).status_code == 200 and waiting.result(30).status_code == 200
        assert 'transferkit_requests_total{path="/predict",status="429"} 1.0' in client.get("/metrics").text


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(served_run, queries) -> None:
    """The first request holds the model; 12 more queue meanwhile and then run as ONE batch of 12, each answered
    with its own record (equal to its answer alone)."""
    gate = Gate()
    app = create_app(ServeConfig(served_run, max_batch_size=32), loader=gate.loader)
    texts = queries["texts"][:12]
    with live_server(app) as base, ThreadPoolExecutor(13) as pool:
        def ask(text: str) -> dict:
            answer = httpx.post(f"{base}/predict", json={"texts": [text]}, timeout=60)
            assert answer.status_code == 200, answer.text
            return answer.json()["predictions"][0]

        first = pool.submit(ask, queries["texts"][-1])
        assert gate.entered.wait(30)
        answers = [pool.submit(ask, text) for text in texts]
        wait_until(lambda: app.state.server.batcher.depth() == len(texts), what="12 queued requests")
        gate.open()
        records = [future.result(60) for future in answers]
        first.result(60)
        assert app.state.server.batcher.largest_batch == len(texts) and gate.calls == 2
        alone = httpx.post(f"{base}/predict", json={"texts": texts}, timeout=60).json()["predictions"]
        assert [r["text"] for r in records] == texts
        for record, single in zip(records, alone, strict=True):
            assert record["label"] == single["label"]
            assert record["probabilities"] == pytest.approx(single["probabilities"], abs=1e-6)
        scraped = httpx.get(f"{base}/metrics").text
    assert metric(scraped, "transferkit_batch_size_count") == 3 and metric(scraped, "transferkit_batch_size_sum") == 25
    assert metric(scraped, 'transferkit_batch_size_bucket{le="8.0"}') == 1  # the first, then 12 and 12 > 8
    assert metric(scraped, 'transferkit_requests_total{path="/predict",status="200"}') == 14
    assert "transferkit_queue_depth 0.0" in scraped and "transferkit_request_seconds_bucket" in scraped


def test_info_gives_the_card_fields_labels_and_version(client) -> None:
    info = client.get("/info").json()
    assert info["task"] == "classification" and info["labels"] == {"0": "neg", "1": "pos"}
    assert info["backend"] == "torch" and info["transferkit_version"] and info["strategy"]["name"] == "finetune"
    assert set(info["metrics"]["eval"]) == {"accuracy", "macro_f1", "roc_auc"}
    assert info["tasks"] == {"main": {"task": "classification", "inputs": ["texts", "pairs"]}}
    assert info["limits"]["max_batch_size"] == 32 and info["limits"]["max_texts"] == 256


def test_the_openapi_schema_describes_predict(client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/health", "/info", "/metrics"} <= set(schema["paths"])
    predict = schema["paths"]["/predict"]["post"]
    assert {"200", "401", "413", "422", "429", "503"} <= set(predict["responses"])
    request = schema["components"]["schemas"]["PredictRequest"]
    assert {"texts", "pairs", "tokens", "questions", "contexts", "task"} <= set(request["properties"])
