"""Tasks: head + featurisation + loss + decoding + metrics, one file each."""

from transferkit.core.registry import Registry
from transferkit.tasks.classification import ClassificationConfig, ClassificationTask
from transferkit.tasks.token_classification import TokenClassificationConfig, TokenClassificationTask

TASKS: Registry = Registry("task")
TASKS.register(ClassificationTask)
TASKS.register(TokenClassificationTask)

__all__ = ["TASKS", "ClassificationConfig", "ClassificationTask", "TokenClassificationConfig",
           "TokenClassificationTask"]
