"""Tasks: head + featurisation + loss + decoding + metrics, one file each."""

from transferkit.core.registry import Registry
from transferkit.tasks.classification import ClassificationConfig, ClassificationTask

TASKS: Registry = Registry("task")
TASKS.register(ClassificationTask)

__all__ = ["TASKS", "ClassificationConfig", "ClassificationTask"]
