"""Test helpers third parties can use: tiny random models, toy data, the strategy contract."""

from transferkit.testing.contracts import (
    STRATEGY_CHECKS,
    TASK_CHECKS,
    StrategyCase,
    TaskCase,
    check_strategy,
    check_task,
    source_model_for,
)
from transferkit.testing.tiny import (
    make_pickle_only_model,
    make_tiny_bert,
    make_tiny_t5,
    make_weightless_model,
    write_tiny_vectors,
)
from transferkit.testing.toy import (
    TOY_WORDS,
    toy_pairs,
    toy_sentences,
    toy_tagged_sentences,
    write_toy_conll,
    write_toy_csv,
    write_toy_pairs,
    write_toy_squad,
)

__all__ = ["STRATEGY_CHECKS", "TASK_CHECKS", "TOY_WORDS", "StrategyCase", "TaskCase", "check_strategy", "check_task", "make_pickle_only_model", "make_tiny_bert", "make_tiny_t5", "make_weightless_model",
           "source_model_for", "toy_pairs", "toy_sentences", "toy_tagged_sentences", "write_tiny_vectors",
           "write_toy_conll",
           "write_toy_csv", "write_toy_pairs", "write_toy_squad"]
