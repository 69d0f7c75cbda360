"""The load client of ``serve_load.py``: N concurrent clients (asyncio + httpx), one text per request, for a bounded
time and count; latency of every request, errors, and each answer checked against ``transferkit predict``'s.

Every client sends ``POST /predict {"texts": [text]}`` and waits for the answer before sending its next request
(a closed loop: N clients keep at most N requests in flight).  Request i carries text ``i mod len(texts)`` (a shared
counter, so the texts sent do not depend on which client is faster); each answer's label is compared with the
reference label of that text, and its probabilities (when it sends them) with the reference's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np


@dataclass
class Tally:
    """What one measured cell saw: per-request latencies (s) and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0  # not a 200 with predictions: an HTTP error, a refusal, a timeout, a dropped connection
    mismatches: int = 0  # a 200 whose label differs from transferkit predict's for that text
    max_probability_gap: float = 0.0  # largest |p_served - p_predict| over answered texts and classes
    first_error: str | None = None
    next_index: int = 0

    def summary(self, seconds: float) -> dict[str, Any]:
        latencies = np.asarray(self.latencies) * 1000.0
        ok = len(self.latencies) - self.mismatches
        return {"requests": len(self.latencies) + self.errors, "ok": ok, "errors": self.errors,
                "mismatches": self.mismatches, "seconds": seconds, "throughput": len(self.latencies) / seconds,
                "p50_ms": float(np.percentile(latencies, 50)) if latencies.size else None,
                "p99_ms": float(np.percentile(latencies, 99)) if latencies.size else None,
                "mean_ms": float(latencies.mean()) if latencies.size else None,
                "max_probability_gap": self.max_probability_gap, "first_error": self.first_error}


def check(answer: dict[str, Any], expected: dict[str, Any], tally: Tally) -> None:
    """Compare one served record with ``transferkit predict``'s record of the same text."""
    if answer.get("label") != expected["label"]:
        tally.mismatches += 1
    served = answer.get("probabilities")
    if served:
        gap = max(abs(float(served[label]) - float(p)) for label, p in expected["probabilities"].items())
        tally.max_probability_gap = max(tally.max_probability_gap, gap)


async def one_request(client: httpx.AsyncClient, url: str, text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The served record for ``text``, or None and why not."""
    try:
        response = await client.post(url, json={"texts": [text]})
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}: {response.text[:200]}"
    predictions = response.json().get("predictions")
    if not isinstance(predictions, list) or len(predictions) != 1:
        return None, f"no single prediction in {response.text[:200]}"
    return predictions[0], None


async def client_loop(client: httpx.AsyncClient, url: str, texts: list[str], expected: list[dict[str, Any]],
                      tally: Tally, deadline: float, max_requests: int) -> None:
    """One client: request after request until the deadline or the shared count is reached."""
    while time.perf_counter() < deadline and tally.next_index < max_requests:
        index = tally.next_index % len(texts)
        tally.next_index += 1  # one event loop: no other client runs between the read and this write
        started = time.perf_counter()
        answer, error = await one_request(client, url, texts[index])
        elapsed = time.perf_counter() - started
        if answer is None:
            tally.errors += 1
            tally.first_error = tally.first_error or error
            continue
        tally.latencies.append(elapsed)
        check(answer, expected[index], tally)


async def drive(url: str, texts: list[str], expected: list[dict[str, Any]], clients: int, seconds: float,
                max_requests: int) -> tuple[Tally, float]:
    """``clients`` concurrent clients for ``seconds`` (or ``max_requests`` requests, whichever comes first)."""
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120.0)) as client:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(client_loop(client, url, texts, expected, tally, deadline, max_requests)
                               for _ in range(clients)))
        return tally, time.perf_counter() - started


def measure(url: str, texts: list[str], expected: list[dict[str, Any]], clients: int, seconds: float,
            warmup: float, max_requests: int) -> dict[str, Any]:
    """Warm up for ``warmup`` seconds (not counted), then one measured cell; the client's own CPU time beside it
    (client and server share the machine's cores)."""
    if warmup > 0:
        asyncio.run(drive(url, texts, expected, clients, warmup, max_requests))
    cpu = time.process_time()
    tally, elapsed = asyncio.run(drive(url, texts, expected, clients, seconds, max_requests))
    return {"clients": clients, **tally.summary(elapsed), "client_cpu_seconds": time.process_time() - cpu}
