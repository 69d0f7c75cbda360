"""Materialise a converted model once, atomically, into ``$TRANSFERKIT_CACHE/models``.

Several catalog models are not shipped as a Hugging Face directory (4-bit weights, an ONNX graph, a zip
split over five packages) or are derived from another model (random weights, depth truncation). Each is
converted once into an ordinary HF directory (``config.json`` + ``model.safetensors`` + tokenizer files)
that ``loading.load_backbone`` loads like any other. This module owns what those conversions share:

* the build runs in a temporary sibling directory that ``os.replace`` renames into place, so a killed
  conversion never leaves a half-written model for a later run to load, and two processes racing both
  end with one good copy;
* ``manifest.json`` records what was converted from what plus each file's size and sha256, and
  :func:`manifest_ok` checks it cheaply (sizes, no rehash) on every resolve;
* every written file gets an mtime derived from its sha256: ``loading.fingerprint_dir`` hashes
  ``config.json`` with the weight files' names, sizes and mtimes, so the same conversion has the same
  fingerprint on every machine, and different bytes (a fixed converter) a different one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from transferkit.core.errors import UserError

MANIFEST = "manifest.json"
_EPOCH_S = 1_577_836_800  # 2020-01-01: content-derived mtimes fall between 2020 and 2028


def cache_root() -> Path:
    """``$TRANSFERKIT_CACHE/models`` (default ``~/.cache/transferkit/models``)."""
    base = os.environ.get("TRANSFERKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "transferkit")
    return Path(base) / "models"


def cache_key(*parts: object) -> str:
    """12 hex characters naming a conversion: changes whenever a source, an option or the converter does."""
    return hashlib.sha256(":".join(str(part) for part in parts).encode()).hexdigest()[:12]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, expected: str, package: str, size: int | None = None) -> None:
    """Raise a one-line UserError naming ``path`` when it is missing, truncated or altered."""
    if not path.is_file():
        raise UserError(f"{path}: file missing: reinstall {package}")
    found = path.stat().st_size
    if size is not None and found != size:
        raise UserError(f"{path}: truncated or wrong size (expected {size} bytes, got {found}): reinstall {package}")
    got = sha256_file(path)
    if got != expected:
        raise UserError(f"{path}: checksum mismatch (expected {expected[:12]}…, got {got[:12]}…): reinstall {package}")


def write_json(path: Path, value: object) -> None:
    """Write ``value`` as indented, key-sorted JSON (byte-identical for equal values)."""
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _stamp(directory: Path) -> dict[str, dict[str, object]]:
    """Give every file an mtime derived from its sha256; return ``{name: {bytes, sha256}}`` (manifest excluded)."""
    files: dict[str, dict[str, object]] = {}
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.name != MANIFEST):
        digest = sha256_file(path)
        mtime_ns = (_EPOCH_S + int(digest[:7], 16)) * 1_000_000_000
        os.utime(path, ns=(mtime_ns, mtime_ns))
        files[path.name] = {"bytes": path.stat().st_size, "sha256": digest}
    return files


def manifest_ok(directory: Path, expected: Mapping[str, object]) -> bool:
    """A finished conversion whose manifest has every ``expected`` value and whose files have their recorded sizes.

    Cheap (sizes only, no rehash), so resolving a cached model costs a few ``stat`` calls.
    """
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if any(manifest.get(key) != value for key, value in expected.items()) or "config.json" not in files:
            return False
        return all((directory / name).stat().st_size == facts["bytes"] for name, facts in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def check_state_dict(config: Any, state: Mapping[str, Any], what: str) -> None:
    """``state`` (torch or numpy arrays) must match ``AutoModel.from_config(config)`` key for key and shape for shape.

    The model is built on the meta device, so the check allocates no weights.
    """
    import torch
    from transformers import AutoModel

    with torch.device("meta"):
        expected = {key: tuple(value.shape) for key, value in AutoModel.from_config(config).state_dict().items()}
    got = {key: tuple(value.shape) for key, value in state.items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))[:4]
        raise RuntimeError(f"{what}: the weights do not match transformers' {config.model_type} model: {diff}")


def materialise(final: Path, build: Callable[[Path], None], is_ok: Callable[[Path], bool]) -> Path:
    """Return ``final``, first building it with ``build(work)`` unless ``is_ok(final)`` already holds.

    ``build`` gets a directory path that does not exist yet, creates it and writes the model there
    (optionally a ``manifest.json`` of facts). Afterwards every file gets its content-derived mtime, the
    manifest (created if absent) gets a ``files`` table, and the directory is renamed to ``final``.
    """
    if is_ok(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        build(work)
        manifest_path = work / MANIFEST
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
        write_json(manifest_path, {**manifest, "files": _stamp(work)})
        if final.exists():  # a stale or broken copy (a good one returned above)
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(work, final)
        except OSError:
            if not is_ok(final):  # another process won the race with a good copy: keep it
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final
