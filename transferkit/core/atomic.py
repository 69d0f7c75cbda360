"""Write a file so that readers see the old file or the whole new one, never a half-written one.

Every writer of user-visible output (predictions, reports, ``select.json``, label maps, feature caches) goes through
here: the bytes go to a temporary file in the target's directory (same file system, so the final ``os.replace`` is an
atomic rename), which is removed again if writing fails. Directories that are built in place and renamed whole (a
run's ``.partial`` directory, checkpoints, materialised models) do the same at directory level where they are built.

>>> import tempfile, os
>>> target = os.path.join(tempfile.mkdtemp(), "out", "a.json")
>>> write_json_atomic(target, {"ok": True})
>>> open(target).read()
'{\\n  "ok": true\\n}\\n'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on a clean exit it becomes ``path``, on an error it is deleted.

    For writers that want a file name (``safetensors.save_file``); parent directories are created."""
    target = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(target))
    os.close(handle)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` that publishes the file only when the ``with`` block ends without an error.

    Text mode defaults to UTF-8; the file is flushed and fsynced before the rename."""
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as stream:
        yield stream
        stream.flush()
        os.fsync(stream.fileno())


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as stream:
        stream.write(data)


def write_json_atomic(path: str | os.PathLike[str], value: Any, *, indent: int = 2, ensure_ascii: bool = False,
                      sort_keys: bool = False) -> None:
    """Write ``value`` as JSON (a trailing newline) to ``path`` atomically."""
    with atomic_open(path) as stream:
        json.dump(value, stream, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)
        stream.write("\n")
