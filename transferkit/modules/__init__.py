"""Small ``nn.Module`` building blocks: pooling, heads, the task model."""

from transferkit.modules.heads import ClassificationHead
from transferkit.modules.pooling import POOLERS, cls_pool, mean_pool
from transferkit.modules.task_model import TaskModel, build_task_model, count_parameters

__all__ = ["POOLERS", "ClassificationHead", "TaskModel", "build_task_model", "cls_pool", "count_parameters", "mean_pool"]
