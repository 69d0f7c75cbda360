"""Strategies: how a pretrained model is adapted; one file each, registered by name.

Adding a strategy = one new module + one line below; the contract tests pick it up.
"""

from transferkit.core.registry import Registry
from transferkit.strategies.bitfit import Bitfit
from transferkit.strategies.feature_extraction import FeatureExtraction
from transferkit.strategies.finetune import Finetune
from transferkit.strategies.lora import Lora
from transferkit.strategies.scratch import Scratch
from transferkit.strategies.tfidf import Tfidf, TfidfPredictor
from transferkit.strategies.word_vectors import WordVectors

STRATEGIES: Registry = Registry("strategy")
for _strategy in (Bitfit, FeatureExtraction, Finetune, Lora, Scratch, Tfidf, WordVectors):
    STRATEGIES.register(_strategy)

__all__ = ["STRATEGIES", "Bitfit", "FeatureExtraction", "Lora", "Finetune", "Scratch", "Tfidf", "TfidfPredictor", "WordVectors"]
