"""``coral``: Deep CORAL fine-tuning (Sun & Saenko 2016, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation").

``L = L_task(source) + λ · ||C_s - C_t||_F^2 / (4 d^2)``: the covariances of the pooled source and
target features (``d`` dimensions) are pulled together (:class:`~transferkit.modules.alignment.CoralLoss`).
No extra weights.  The loss is tiny in absolute terms (``1/(4d^2)``), hence the larger default λ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from transferkit.core.config import option
from transferkit.modules.alignment import CoralLoss
from transferkit.strategies.domain_alignment import AlignmentConfig, DomainAlignment


@dataclass
class CoralConfig(AlignmentConfig):
    weight: float = option(10.0, "λ: weight of the CORAL loss beside the task loss on the source")


class Coral(DomainAlignment):
    """Fine-tuning plus second-order (covariance) alignment of source and target features."""

    name: ClassVar[str] = "coral"
    Config: ClassVar[type] = CoralConfig
    alignment: ClassVar[type[nn.Module]] = CoralLoss
