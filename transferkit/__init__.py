"""transferkit: transfer learning for NLP.

>>> import transferkit
>>> result = transferkit.train("examples/sst2_finetune.yaml", ["training.epochs=1"])   # doctest: +SKIP
>>> model = transferkit.load(result.output)                                             # doctest: +SKIP
>>> model.predict(["a gripping, funny film"]), model.predict_proba(["a dull mess"])    # doctest: +SKIP
>>> transferkit.evaluate(result.output, "dev.tsv")["accuracy"]                          # doctest: +SKIP
>>> transferkit.predict(result.output, "new.csv", "predictions.jsonl")                  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate", "load", "predict", "train"]

_API = {"train": "train", "evaluate": "evaluate_run", "predict": "predict_file", "load": "load"}


def __getattr__(name: str) -> Any:
    """The API functions, imported on first use (``import transferkit`` stays fast; torch loads when needed)."""
    if name not in _API:
        raise AttributeError(f"module 'transferkit' has no attribute {name!r}")
    from transferkit.experiments import api

    return getattr(api, _API[name])
