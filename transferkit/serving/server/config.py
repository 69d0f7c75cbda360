"""``ServeConfig``: the options of ``transferkit serve`` (and of ``create_app``), checked before anything starts."""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.core.config import option
from transferkit.core.errors import UserError

BACKENDS = ("torch", "onnx")
"""``torch``: the run's own model (PyTorch, a TF-IDF or text-encoder head); ``onnx``: a directory written by
``transferkit export --format onnx [--quantize int8]``, run by onnxruntime."""


@dataclass
class ServeConfig:
    """Where the model is, where to listen, and the server's limits (TEI's: a bounded queue, a batch budget,
    per-request caps)."""

    run_dir: str = option("", "a finished run directory (or one written by transferkit export --format onnx)")
    host: str = option("127.0.0.1", "interface to listen on; the loopback default lets only this machine connect")
    port: int = option(8000, "TCP port")
    backend: str | None = option(None, "torch or onnx (None: the model the run directory holds)")
    token_file: str | None = option(None, "file holding the bearer token /predict and /info require (None: open)")
    max_batch_size: int = option(32, "inputs the model runs at once, gathered from concurrent requests")
    max_wait_ms: float = option(5.0, "how long the batcher waits for more requests before running a batch")
    max_queue: int = option(512, "requests waiting for the model; one more is refused with 429")
    max_texts: int = option(256, "inputs per request; more is refused with 413")
    max_chars: int = option(10_000, "characters per input text (a pair's or a question's texts each); more: 413")


def check_config(config: ServeConfig) -> None:
    """One-line errors for options no server can run with (before the model is loaded or a port is bound)."""
    if config.backend is not None and config.backend not in BACKENDS:
        raise UserError(f"--backend: unknown backend '{config.backend}'; valid: {', '.join(BACKENDS)}")
    if not 0 <= config.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {config.port}")
    positive = {"--max-batch-size": config.max_batch_size, "--max-queue": config.max_queue,
                "--max-texts": config.max_texts, "--max-chars": config.max_chars}
    for flag, value in positive.items():
        if value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
    if config.max_wait_ms < 0:
        raise UserError(f"--max-wait-ms must be >= 0, got {config.max_wait_ms}")
