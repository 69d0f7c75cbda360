"""``create_app(config)``: the HTTP API of a saved run, on FastAPI (``transferkit serve`` runs it under uvicorn).

* ``POST /predict`` ``{"texts": [...]}`` (or ``pairs``, ``tokens``, ``questions`` + ``contexts``; ``task`` for a
  multi-task run) -> ``{"predictions": [...]}``, the records ``transferkit predict`` writes, computed in batches
  gathered across concurrent requests (``batcher``);
* ``GET /health``: 503 while the model loads (in a thread, after the server starts listening), then 200;
* ``GET /info``: the model card's fields, the labels, the version and the limits;
* ``GET /metrics``: Prometheus text (requests, latency, batch sizes, queue depth).

Every refusal is JSON ``{"error": ..., "error_type": ...}``: 401 (token), 413 (too big), 422 (malformed or
unreadable input), 429 (queue full), 503 (not loaded); an error inside the model is a 500 for that request
only: the server never stops on bad input.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from transferkit.core.errors import UserError
from transferkit.serving.model import MAIN_TASK
from transferkit.serving.server.backends import Backend, load_backend, version
from transferkit.serving.server.batcher import Batcher
from transferkit.serving.server.config import ServeConfig, check_config
from transferkit.serving.server.guard import Guard, read_token, refused
from transferkit.serving.server.limits import RequestRefused, invalid, max_body_bytes, request_inputs
from transferkit.serving.server.metrics import ServerMetrics
from transferkit.serving.server.schemas import ERRORS, Health, PredictRequest, PredictResponse

logger = logging.getLogger("transferkit")
Loader = Callable[[ServeConfig], Backend]


def default_loader(config: ServeConfig) -> Backend:
    """The run's model for the configured backend."""
    return load_backend(config.run_dir, config.backend)


@dataclass
class ServerState:
    """What the routes share: the options, the metrics, the batcher and, once loaded, the model."""

    config: ServeConfig
    metrics: ServerMetrics
    batcher: Batcher | None = None
    backend: Backend | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def load(self, loader: Loader) -> None:
        """Load the model (in a thread); a failure is kept for ``/health`` and logged, never raised."""
        started = time.perf_counter()
        try:
            backend = loader(self.config)
            info = backend.info() | {"limits": {k: v for k, v in dataclasses.asdict(self.config).items()
                                                if k.startswith("max_")}}
        except UserError as exc:
            self.error = str(exc)
            logger.error("error: %s", exc)
            return
        except Exception as exc:  # the server stays up and says why on /health
            self.error = f"loading the model failed: {type(exc).__name__}: {exc}".splitlines()[0]
            logger.exception("loading the model failed")
            return
        self.info, self.backend = info, backend  # backend last: it marks the server ready
        logger.info("model loaded in %.1f s (%s backend, task %s)", time.perf_counter() - started, backend.name,
                    backend.model.task.name)

    def ready(self) -> Backend:
        """The loaded model, or a 503 saying why there is none yet."""
        if self.backend is not None:
            return self.backend
        reason = self.error or "the model is still loading: retry when GET /health answers 200"
        raise RequestRefused(503, "unhealthy" if self.error else "not_ready", reason, {"Retry-After": "1"})

    def run(self, key: tuple[str, str], inputs: list[Any]) -> list[dict[str, Any]]:
        """The batcher's model call (in its worker thread)."""
        return self.ready().records(key[0], inputs)


def create_app(config: ServeConfig, loader: Loader | None = None) -> FastAPI:
    """The app serving ``config.run_dir``; the model loads when the app starts (``loader``: how, for tests)."""
    check_config(config)
    token = read_token(config.token_file) if config.token_file else None
    state = ServerState(config, ServerMetrics())
    state.batcher = Batcher(state.run, config.max_batch_size, config.max_wait_ms, config.max_queue,
                            state.metrics.batch_size.observe)
    state.metrics.watch_queue(state.batcher.depth)
    app = FastAPI(title="transferkit", version=version(), lifespan=_lifespan(state, loader or default_loader),
                  description="Predictions of a transferkit run, batched across concurrent requests.")
    app.state.server = state
    app.add_middleware(Guard, metrics=state.metrics, token=token, max_body=max_body_bytes(config))
    _add_routes(app, state)
    _add_error_handlers(app)
    return app


def _lifespan(state: ServerState, loader: Loader) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert state.batcher is not None
        state.batcher.start()
        # a daemon thread: the server answers /health (503) meanwhile, and a stop never waits for a slow load
        threading.Thread(target=state.load, args=(loader,), name="transferkit-load", daemon=True).start()
        try:
            yield
        finally:
            await state.batcher.stop()

    return lifespan


def _add_routes(app: FastAPI, state: ServerState) -> None:
    @app.post("/predict", response_model=PredictResponse, responses=ERRORS)
    async def predict(request: PredictRequest) -> dict[str, Any]:
        """The prediction records of the request's inputs, in input order (those ``transferkit predict`` writes)."""
        backend = state.ready()
        try:
            model = backend.model_for(request.task)
        except UserError as exc:
            raise invalid(str(exc)) from None
        form, inputs = request_inputs(request, model.task, state.config)
        assert state.batcher is not None
        try:
            records = await state.batcher.submit((request.task or MAIN_TASK, form), inputs)
        except asyncio.QueueFull:
            raise RequestRefused(429, "overloaded", f"{state.config.max_queue} requests are waiting for the model "
                                                    "(--max-queue): retry later") from None
        except UserError as exc:
            raise invalid(str(exc)) from None
        except Exception as exc:  # the model failed on this request alone (the batcher retried it alone)
            logger.exception("prediction failed")
            raise RequestRefused(500, "prediction_failed", f"the model failed on this request: "
                                                           f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
        return {"predictions": records}

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Any:
        """200 once the model is loaded; 503 while it loads or when loading failed (with the reason)."""
        if state.backend is not None:
            return Health(status="ok")
        body = Health(status="failed" if state.error else "loading", error=state.error)
        return JSONResponse(body.model_dump(), 503)

    @app.get("/info", responses={503: ERRORS[503]})
    async def info() -> dict[str, Any]:
        """The model card's fields (task, labels as id -> label, source model, strategy, metrics), the transferkit
        version, the backend and the server's limits."""
        state.ready()
        return state.info

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def metrics() -> Response:
        """Prometheus text format: requests, latency, batch sizes, queue depth."""
        return Response(state.metrics.render(), media_type=state.metrics.content_type)


def _validation_message(errors: list[dict[str, Any]]) -> str:
    """One line from pydantic's errors: where the first is and what it is (and how many more there are)."""
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if first.get("type") == "json_invalid":
        return f"malformed JSON: {(first.get('ctx') or {}).get('error', first.get('msg'))}{more}"
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first.get("loc", ())[1:])
    return f"{path.lstrip('.') or 'body'}: {first.get('msg')}{more}"


def _add_error_handlers(app: FastAPI) -> None:
    async def refusal(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestRefused)
        return refused(exc)

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return refused(invalid(_validation_message(list(exc.errors())) if exc.errors() else "invalid request"))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = {400: "validation", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
        hint = ": send UTF-8 encoded JSON" if exc.status_code == 400 else ""  # FastAPI could not decode the body
        return refused(RequestRefused(exc.status_code, kind, f"{exc.detail}{hint}", exc.headers))

    app.add_exception_handler(RequestRefused, refusal)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http_error)
