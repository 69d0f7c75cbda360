"""Test helpers third parties can use: tiny random models, toy data, the strategy contract."""

from transferkit.testing.contracts import check_strategy
from transferkit.testing.tiny import make_pickle_only_model, make_tiny_bert, make_weightless_model
from transferkit.testing.toy import TOY_WORDS, toy_sentences, write_toy_csv

__all__ = ["TOY_WORDS", "check_strategy", "make_pickle_only_model", "make_tiny_bert", "make_weightless_model",
           "toy_sentences", "write_toy_csv"]
