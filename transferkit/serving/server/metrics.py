"""Prometheus metrics of one server (its own registry, so several apps in one process never collide).

``transferkit_requests_total{path, status}``, ``transferkit_request_seconds{path}`` (latency histogram),
``transferkit_batch_size`` (inputs per model call, histogram) and ``transferkit_queue_depth`` (requests waiting
for the model, read at scrape time).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PATHS = frozenset({"/predict", "/health", "/info", "/metrics"})
"""Paths counted by name; any other is counted as ``other`` (a scanner's random paths add no series)."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServerMetrics:
    """The four series, and the text a scrape reads."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("transferkit_requests", "HTTP requests answered", ["path", "status"],
                                registry=self.registry)
        self.latency = Histogram("transferkit_request_seconds", "time to answer a request", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("transferkit_batch_size", "inputs per model call (gathered across requests)",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("transferkit_queue_depth", "requests waiting for the model", registry=self.registry)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        """Read the queue depth from ``depth()`` at every scrape."""
        self.queue_depth.set_function(depth)

    def request_done(self, path: str, status: int, seconds: float) -> None:
        path = path if path in PATHS else "other"
        self.requests.labels(path, str(status)).inc()
        self.latency.labels(path).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        return generate_latest(self.registry)
