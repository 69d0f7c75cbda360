"""The no-transfer baseline: the same architecture, randomly initialised, trained like ``finetune``.

Whatever ``finetune`` gains over ``scratch`` on the same data and budget is what the
pretrained weights transferred.
"""

from __future__ import annotations

from typing import ClassVar

from transferkit.strategies.finetune import Finetune


class Scratch(Finetune):
    """Random initialisation of the source architecture (tokenizer kept), then full training."""

    name: ClassVar[str] = "scratch"
    random_init: ClassVar[bool] = True
