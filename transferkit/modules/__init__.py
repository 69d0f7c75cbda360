"""Small ``nn.Module`` building blocks: pooling, heads, the task model."""

from transferkit.modules.heads import ClassificationHead, TokenHead
from transferkit.modules.pooling import POOLERS, cls_pool, mean_pool
from transferkit.modules.task_model import BACKBONE_INPUTS, TaskModel, count_parameters

__all__ = ["BACKBONE_INPUTS", "POOLERS", "ClassificationHead", "TaskModel", "TokenHead", "cls_pool", "count_parameters",
           "mean_pool"]
