"""``sequential``: plain fine-tuning on each stage in turn, the lower bound of continual learning.

Every stage trains the whole model on its own examples only, so what earlier stages taught is overwritten as far as
the new data pulls the weights: catastrophic forgetting (McCloskey & Cohen 1989; for BERT on text classification,
d'Autume et al. 2019 measure 18.4% average accuracy over five stages against 70.6% with replay).  Its ``R`` is the
reference every other method's forgetting (BWT) is measured against.
"""

from __future__ import annotations

from typing import ClassVar

from transferkit.strategies.continual.plan import ContinualStrategy
from transferkit.strategies.finetune import FinetuneConfig


class Sequential(ContinualStrategy):
    """Fine-tune on stage 1, then stage 2, ... (the shared plan's ``learn`` as it is)."""

    name: ClassVar[str] = "sequential"
    Config: ClassVar[type] = FinetuneConfig
