"""``core.atomic``: a published file is whole; a failed write leaves the old file and no temporary behind."""

from __future__ import annotations

import json
import os

import pytest

from transferkit.core.atomic import atomic_open, atomic_path, write_bytes_atomic, write_json_atomic


def test_writes_create_parents_and_replace(tmp_path) -> None:
    target = tmp_path / "a" / "b" / "out.json"
    write_json_atomic(target, {"名": 1})
    assert json.loads(target.read_text(encoding="utf-8")) == {"名": 1} and "名" in target.read_text(encoding="utf-8")
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new" and os.listdir(target.parent) == ["out.json"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # ordinary permissions, not mkstemp's


def test_failure_keeps_the_old_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_open(target) as stream:
        stream.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text(encoding="utf-8") == "old" and os.listdir(tmp_path) == ["out.txt"]
    with pytest.raises(TypeError):
        write_json_atomic(target, {"x": object()})  # not serialisable: fails after writing part of it
    assert target.read_text(encoding="utf-8") == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_publishes_only_on_success(tmp_path) -> None:
    target = tmp_path / "cache.bin"
    with atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and not target.exists()
        with open(tmp, "wb") as stream:
            stream.write(b"x")
    assert target.read_bytes() == b"x"
