"""``serve(config)``: check everything a user can get wrong, then run the app under uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import socket

from transferkit.core.errors import UserError
from transferkit.serving.server.backends import check_backend
from transferkit.serving.server.config import ServeConfig, check_config
from transferkit.serving.server.guard import read_token

logger = logging.getLogger("transferkit")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int) -> None:
    """A one-line error when ``host:port`` cannot be listened on (in use, no such interface)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port or --host"
                        ) from None


def serve(config: ServeConfig) -> None:
    """Serve ``config.run_dir`` until interrupted; every user mistake is one line before anything starts."""
    import uvicorn

    from transferkit.serving.server.app import create_app

    check_config(config)
    backend = check_backend(config.run_dir, config.backend)
    if config.token_file:
        read_token(config.token_file)
    check_port(config.host, config.port)
    if not config.token_file and not _loopback(config.host):
        logger.warning("serving on %s without --token-file: anyone who can reach this port can query the model",
                       config.host)
    app = create_app(config)
    logger.info("serving %s (%s backend) on http://%s:%d: POST /predict, GET /health /info /metrics /docs",
                config.run_dir, backend, config.host, config.port)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)
