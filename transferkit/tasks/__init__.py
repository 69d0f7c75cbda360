"""Tasks: head + featurisation + loss + decoding + metrics, one file each."""

from transferkit.core.registry import Registry
from transferkit.tasks.classification import ClassificationConfig, ClassificationTask
from transferkit.tasks.question_answering import QuestionAnsweringConfig, QuestionAnsweringTask
from transferkit.tasks.summarization import SummarizationConfig, SummarizationTask
from transferkit.tasks.token_classification import TokenClassificationConfig, TokenClassificationTask

TASKS: Registry = Registry("task")
TASKS.register(ClassificationTask)
TASKS.register(TokenClassificationTask)
TASKS.register(QuestionAnsweringTask)
TASKS.register(SummarizationTask)

__all__ = ["TASKS", "ClassificationConfig", "ClassificationTask", "QuestionAnsweringConfig", "QuestionAnsweringTask", "SummarizationConfig",
           "SummarizationTask", "TokenClassificationConfig",
           "TokenClassificationTask"]
