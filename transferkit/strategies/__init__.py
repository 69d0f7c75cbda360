"""Strategies: how a pretrained model is adapted; one file each, registered by name.

Adding a strategy = one new module + one line below; the contract tests pick it up.
"""

from transferkit.core.registry import Registry
from transferkit.strategies.feature_extraction import FeatureExtraction
from transferkit.strategies.finetune import Finetune
from transferkit.strategies.scratch import Scratch
from transferkit.strategies.tfidf import Tfidf, TfidfPredictor

STRATEGIES: Registry = Registry("strategy")
for _strategy in (FeatureExtraction, Finetune, Scratch, Tfidf):
    STRATEGIES.register(_strategy)

__all__ = ["STRATEGIES", "FeatureExtraction", "Finetune", "Scratch", "Tfidf", "TfidfPredictor"]
