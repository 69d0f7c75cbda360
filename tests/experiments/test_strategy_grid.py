"""One grid over every kind of transfer (finetune, lora, bitfit, feature_extraction, word_vectors) -> one report."""

from __future__ import annotations

import html
import re

from transferkit.core.results import ResultsStore
from transferkit.experiments.grid import axis_label, parse_grid, run_grid
from transferkit.reporting import render_report

STRATEGIES = ["finetune", "lora", "bitfit", "feature_extraction", "word_vectors",
              {"name": "word_vectors", "init": "random"}]


def test_axis_labels() -> None:
    assert axis_label({"name": "word_vectors", "init": "random"}) == "word_vectors(init=random)"
    assert axis_label({"name": "lora"}) == "lora" and axis_label(8) == 8 and axis_label("x") == "x"


def test_every_strategy_kind_in_one_grid_and_one_report(tiny_model, tiny_vectors, toy_files, tmp_path) -> None:
    spec = parse_grid({
        "base": {"model": tiny_model,
                 "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence"},
                 "training": {"epochs": 2, "batch_size": 32, "learning_rate": 3e-3, "progress": False,
                              "checkpoint_every": 0}},
        "axes": {"strategy": STRATEGIES, "training.seed": [1, 2]},
        "overrides": [{"when": {"strategy": "word_vectors"}, "set": {"model": tiny_vectors}}],
    })
    summary = run_grid(spec, str(tmp_path), progress=False)
    assert summary.failed == 0 and summary.done == 12, [c.error for c in summary.failures]
    cells = ResultsStore(str(tmp_path)).cells()
    labels = {c.axes["strategy"] for c in cells}
    assert labels == {"finetune", "lora", "bitfit", "feature_extraction", "word_vectors", "word_vectors(init=random)"}
    params = {c.axes["strategy"]: c.trainable_parameters for c in cells}
    assert params["lora"] < params["finetune"] and params["bitfit"] < params["finetune"]
    assert all(c.config["model"] == tiny_vectors for c in cells if c.axes["strategy"].startswith("word_vectors"))
    text = html.unescape(_render(tmp_path))
    for label in labels:
        assert label in text
    assert "trainable params" in text
    assert re.search(r"word_vectors</td><td[^>]*>word_vectors\(init=random\)", text), "comparison vs random init"


def _render(directory) -> str:
    path = directory / "report.html"
    render_report(str(directory), str(path))
    return path.read_text(encoding="utf-8")
