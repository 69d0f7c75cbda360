"""``mmd``: multi-kernel MMD fine-tuning (Long et al. 2015, "Learning Transferable Features with Deep
Adaptation Networks", DAN).

``L = L_task(source) + λ · MMD²_k(f_s, f_t)`` with ``k`` an average of Gaussian kernels whose
bandwidths scale the batch's mean squared distance by ``2^-2 … 2^2``
(:class:`~transferkit.modules.alignment.MultiKernelMMD`, unbiased quadratic estimator): the
kernel mean embeddings of the pooled source and target features are pulled together.  No extra weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from transferkit.core.config import option
from transferkit.modules.alignment import MultiKernelMMD
from transferkit.strategies.domain_alignment import AlignmentConfig, DomainAlignment


@dataclass
class MmdConfig(AlignmentConfig):
    weight: float = option(1.0, "λ: weight of the MMD² term beside the task loss on the source")


class Mmd(DomainAlignment):
    """Fine-tuning plus kernel mean-embedding alignment of source and target features."""

    name: ClassVar[str] = "mmd"
    Config: ClassVar[type] = MmdConfig
    alignment: ClassVar[type[nn.Module]] = MultiKernelMMD
