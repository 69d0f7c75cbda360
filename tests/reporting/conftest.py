"""Fixtures for the reporting tests: a synthetic results directory (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reporting.fake_results import make_results
from transferkit.core.results import Cell


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Cell]]:
    """A results dir with 4 strategies x 3 budgets x 3 seeds done cells and one failed cell."""
    directory = tmp_path_factory.mktemp("grid")
    return directory, make_results(str(directory))
