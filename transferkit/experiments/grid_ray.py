"""Grid cells as Ray tasks: a local Ray by default, a running Ray cluster by address.

The driver (the ``transferkit grid`` process) submits each cell as a task, gathers the outcomes with
``ray.wait`` as they finish and is the only writer of the results store, so the store needs no file
system shared with the workers.  A cell's run directory is written on the node that trained it: on a
cluster of several machines, the grid's output directory and the data files must be on a file system
every node sees at the same path.  Ray is an optional dependency (``pip install 'transferkit[ray]'``),
imported only when a grid asks for it.

>>> with ray_session(RayConfig()) as where:                                      # doctest: +SKIP
...     for index, value in ray_map(train_one, configs, RayConfig()):
...         print(index, value)
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from transferkit.core.errors import UserError

INSTALL_HINT = "pip install 'transferkit[ray]'"
CLIENT_SCHEME = "ray://"


@dataclass
class RayConfig:
    """Where and how wide a grid runs on Ray."""

    address: str | None = None
    """``ray://HOST:10001`` (Ray Client), ``HOST:6379`` (from a cluster node) or ``auto``; None: ``RAY_ADDRESS`` if
    set, else a local Ray started for this grid and shut down after it."""
    workers: int | None = None
    """Cells at once: at most this many are submitted at a time (default: all, Ray queues what does not fit), and a
    local Ray gets this many CPUs (default: this machine's cores)."""
    cpus_per_cell: float = 1.0
    """CPUs Ray reserves for each cell (Ray also sets the task's ``OMP_NUM_THREADS`` from it)."""
    connect_timeout_s: float = 10.0
    """How long to wait for the cluster's port before giving up with a one-line error."""
    object_store_mb: int = 256
    """A local Ray's object store: cells exchange only configs and metrics, so a small one is enough."""


def import_ray() -> Any:
    """The ``ray`` module, or a UserError that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise UserError(f"grid --executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``ray://host:port`` or ``host:port`` -> (host, port); None for ``auto`` and other forms Ray resolves."""
    rest = address.removeprefix(CLIENT_SCHEME).rstrip("/")
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def check_reachable(address: str, timeout_s: float) -> None:
    """Fail fast, in one line, when nothing listens at the address (Ray's own client retries for ~45 s)."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(f"grid: cannot reach the Ray cluster at {address}: {reason}") from None


def _connect(ray: Any, address: str) -> None:
    """``ray.init`` on an existing cluster; any failure becomes one line naming the address."""
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError, gRPC errors
        if ray.is_initialized():
            ray.shutdown()
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if "RAY_AUTH_MODE" not in os.environ:  # Ray sends its token only when told to for an explicit address
            reason += (" (a cluster with token authentication also needs "
                       "RAY_AUTH_MODE=token and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN)")
        raise UserError(f"grid: cannot reach the Ray cluster at {address}: {reason}") from None


@contextmanager
def ray_session(config: RayConfig) -> Iterator[str]:
    """Connect to (or start) Ray for one grid; yields a description of where the cells run.

    A Ray this process already started (``ray.init()`` in a notebook or a test) is used as it is and left
    running; one started or connected here is shut down at the end."""
    ray = import_ray()
    address = config.address or (None if ray.is_initialized() else os.environ.get("RAY_ADDRESS") or None)
    if address:
        check_reachable(address, config.connect_timeout_s)
    if ray.is_initialized():
        if address:
            raise UserError(f"grid: this process is already connected to Ray, so it cannot also connect to "
                            f"{address}: leave the address out to use that Ray, or call ray.shutdown() first")
        yield f"the running Ray ({_cpus(ray)} CPUs)"
        return
    if address:
        _connect(ray, address)
        where = f"the Ray cluster at {address} ({_cpus(ray)} CPUs)"
    else:  # a private Ray for this grid's lifetime: its setup notices (token auth, ...) are noise here
        ray.init(address="local", num_cpus=config.workers or os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=False, object_store_memory=config.object_store_mb * 2**20,
                 logging_level=logging.ERROR)
        where = f"a local Ray ({_cpus(ray)} CPUs)"
    try:
        yield where
    finally:
        ray.shutdown()


def _cpus(ray: Any) -> int:
    return int(ray.cluster_resources().get("CPU", 0))


def ray_map(function: Callable[[Any], Any], items: Sequence[Any], config: RayConfig,
            submitted: Callable[[int], None] | None = None) -> Iterator[tuple[int, Any]]:
    """Run ``function(item)`` as one Ray task per item (inside :func:`ray_session`); yield ``(index, result)`` as
    each finishes, the result being the exception when the task could not finish (a crashed worker or node).

    ``submitted(index)`` is called as each task is handed to Ray; at most ``config.workers`` are in flight.  Tasks
    still pending when the caller stops (Ctrl-C) are cancelled."""
    ray = import_ray()
    remote = ray.remote(function).options(num_cpus=config.cpus_per_cell)
    limit = config.workers or len(items)
    pending: dict[Any, int] = {}
    next_index = 0
    try:
        while pending or next_index < len(items):
            while next_index < len(items) and len(pending) < limit:
                pending[remote.remote(items[next_index])] = next_index
                if submitted is not None:
                    submitted(next_index)
                next_index += 1
            finished, _ = ray.wait(list(pending), num_returns=1)
            for ref in finished:
                index = pending.pop(ref)
                yield index, _result(ray, ref)
    finally:
        for ref in pending:
            with suppress(Exception):  # Ray already shut down, or the task finished meanwhile
                ray.cancel(ref, force=True)


def _result(ray: Any, ref: Any) -> Any:
    """The task's return value, or the exception that ended it (a task error is unwrapped to its cause)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        return exc.cause if isinstance(exc.cause, BaseException) else exc
    except ray.exceptions.RayError as exc:
        return exc
