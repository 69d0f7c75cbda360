"""Small ``nn.Module`` building blocks: pooling, heads, the task model, domain-adaptation losses."""

from transferkit.modules.alignment import CoralLoss, MultiKernelMMD
from transferkit.modules.domain_adversarial import (
    DomainAdversarialLoss,
    DomainAdversarialOutput,
    DomainDiscriminator,
    GradientReverse,
    dann_coefficient,
    reverse_gradient,
)
from transferkit.modules.heads import ClassificationHead, TokenHead
from transferkit.modules.pooling import POOLERS, cls_pool, mean_pool
from transferkit.modules.task_model import BACKBONE_INPUTS, TaskModel, count_parameters

__all__ = ["BACKBONE_INPUTS", "POOLERS", "ClassificationHead", "CoralLoss", "DomainAdversarialLoss",
           "DomainAdversarialOutput", "DomainDiscriminator", "GradientReverse", "MultiKernelMMD", "TaskModel", "TokenHead",
           "cls_pool", "count_parameters", "dann_coefficient", "mean_pool", "reverse_gradient"]
