"""Every example config in examples/ stays valid: known keys, option values, strategy x task pairs.

Run configs are checked as ``transferkit train --config`` checks them before reading data; grid specs
are parsed and their cells' settings applied (``init_from`` runs need not exist yet); search specs as
``transferkit tune`` checks them before its first trial.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from transferkit.core.yaml_config import read_yaml_file
from transferkit.experiments.api import make_config
from transferkit.experiments.grid import cell_config, parse_grid
from transferkit.experiments.run import components
from transferkit.experiments.tune_spec import load_tune_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_a_valid_config(path: Path, monkeypatch) -> None:
    raw = read_yaml_file(str(path), "example")
    monkeypatch.setattr("transferkit.experiments.run.check_start", lambda *args: None)  # runs made by other examples
    if "axes" in raw:
        spec = parse_grid(raw, str(path))
        axes = {key: values[0] for key, values in spec.axes.items()}
        components(cell_config(spec, axes, "/tmp/grid"))
    elif "search" in raw:
        load_tune_spec(str(path))
    else:
        components(make_config(str(path), ["output=/tmp/run"]))
