"""The no-transfer baseline: the same architecture, randomly initialised, trained like ``finetune``.

Whatever ``finetune`` gains over ``scratch`` on the same data and budget is what the
pretrained weights transferred.
"""

from __future__ import annotations

from typing import ClassVar

from transferkit.models import is_text_encoder, resolve
from transferkit.strategies.finetune import Finetune


class Scratch(Finetune):
    """Random initialisation of the source architecture (tokenizer kept), then full training."""

    name: ClassVar[str] = "scratch"
    random_init: ClassVar[bool] = True

    def check_model(self, model_ref: str) -> None:
        """Only the architecture is used: a local directory needs no weights, a frozen text encoder is refused."""
        if is_text_encoder(model_ref):
            super().check_model(model_ref)
        resolve(model_ref)
