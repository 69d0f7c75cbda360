"""House rules that keep the code base readable: the layer contract and the file-size budget."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_layers_only_import_downwards() -> None:
    beside_python = Path(sys.executable).parent / "lint-imports"  # the venv's, even when it is not on PATH
    executable = str(beside_python) if beside_python.exists() else shutil.which("lint-imports")
    if executable is None:
        pytest.fail("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([executable], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_source_files_stay_under_400_lines() -> None:
    sizes = {p.relative_to(ROOT): sum(1 for _ in p.open()) for p in (ROOT / "transferkit").rglob("*.py")}
    too_big = {str(p): n for p, n in sizes.items() if n > 400}
    assert not too_big, too_big
