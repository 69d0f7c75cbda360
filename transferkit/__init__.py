"""transferkit: transfer learning for NLP.

>>> import transferkit
>>> result = transferkit.train("examples/sst2_finetune.yaml", ["training.epochs=1"])   # doctest: +SKIP
>>> model = transferkit.load(result.output)                                             # doctest: +SKIP
>>> model.predict(["a gripping, funny film"]), model.predict_proba(["a dull mess"])    # doctest: +SKIP
>>> transferkit.evaluate(result.output, "dev.tsv")["accuracy"]                          # doctest: +SKIP
>>> transferkit.predict(result.output, "new.csv", "predictions.jsonl")                  # doctest: +SKIP
>>> transferkit.select("train.csv", ["minilm-l6", "mpnet-base"])                        # doctest: +SKIP
>>> transferkit.advise("train.csv", minutes=15, output="advice")["command"]             # doctest: +SKIP
>>> transferkit.tune("tune.yaml", "runs/tune", trials=20).best["params"]                # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["advise", "evaluate", "load", "predict", "select", "train", "tune"]

_API = {"train": ("api", "train"), "evaluate": ("api", "evaluate_run"), "predict": ("api", "predict_file"),
        "load": ("api", "load"), "select": ("select", "select"), "advise": ("advise", "advise"),
        "tune": ("tune", "tune")}
"""Public name -> (module of ``transferkit.experiments``, function)."""


def __getattr__(name: str) -> Any:
    """The API functions, imported on first use (``import transferkit`` stays fast; torch loads when needed)."""
    if name not in _API:
        raise AttributeError(f"module 'transferkit' has no attribute {name!r}")
    import importlib

    module, function = _API[name]
    return getattr(importlib.import_module(f"transferkit.experiments.{module}"), function)
