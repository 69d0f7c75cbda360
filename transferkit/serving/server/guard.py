"""The door of the server: the bearer token, the body-size cap and the request metrics, before any route runs.

A pure ASGI middleware (no per-request task or body copy): a request to a protected path without the token
(``Authorization: Bearer TOKEN``, compared in constant time) gets 401, a ``/predict`` body whose
``Content-Length`` exceeds what the limits could admit gets 413, both before the body is read.  ``/health``,
``/metrics`` and the OpenAPI pages stay open, so probes and Prometheus need no token.
"""

from __future__ import annotations

import hmac
import os
import time
from typing import Any

from starlette.responses import JSONResponse

from transferkit.core.errors import UserError
from transferkit.serving.server.limits import RequestRefused
from transferkit.serving.server.metrics import ServerMetrics

PROTECTED = frozenset({"/predict", "/info"})


def read_token(path: str) -> str:
    """The bearer token in ``path`` (surrounding whitespace and the final newline stripped)."""
    if not os.path.isfile(path):
        raise UserError(f"--token-file {path}: no such file")
    with open(path, encoding="utf-8") as handle:
        token = handle.read().strip()
    if not token or any(character.isspace() for character in token):
        raise UserError(f"--token-file {path}: write one token (no spaces) in the file; it is empty or has spaces")
    return token


def refused(error: RequestRefused) -> JSONResponse:
    """The JSON answer to a refused request."""
    return JSONResponse({"error": error.message, "error_type": error.kind}, error.status, headers=error.headers)


class Guard:
    """ASGI middleware: token and size checks on the way in, status and latency counted on the way out."""

    def __init__(self, app: Any, metrics: ServerMetrics, token: str | None, max_body: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body
        self.token = None if token is None else f"Bearer {token}".encode()

    def check(self, scope: dict[str, Any]) -> RequestRefused | None:
        """Why the request is refused before its body is read, or None."""
        if scope["path"] not in PROTECTED:
            return None
        headers = dict(scope["headers"])
        if self.token is not None and not hmac.compare_digest(headers.get(b"authorization", b""), self.token):
            return RequestRefused(401, "unauthorized", "missing or wrong bearer token: send 'Authorization: Bearer "
                                                       "TOKEN' with the token of --token-file",
                                  {"WWW-Authenticate": "Bearer"})
        length = headers.get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.max_body:
            return RequestRefused(413, "payload_too_large", f"a {int(length):,}-byte body; the limit is "
                                                            f"{self.max_body:,} bytes (--max-texts x --max-chars)")
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            error = self.check(scope)
            await (refused(error) if error else self.app)(scope, receive, send_status)
        finally:
            self.metrics.request_done(scope["path"], status[0], time.perf_counter() - start)
