"""Strategies: how a pretrained model is adapted; one module or package each, registered by name.

Adding a strategy = one new module (or package) + one line below; the contract tests pick it up.
"""

from typing import Any

from transferkit.core.config import build_dataclass
from transferkit.core.errors import UserError
from transferkit.core.registry import Registry
from transferkit.strategies.bitfit import Bitfit
from transferkit.strategies.continual import Adapters, Ewc, Joint, Lwf, Replay, Sequential
from transferkit.strategies.continued_pretraining import Dapt, Tapt
from transferkit.strategies.contrastive import Contrastive
from transferkit.strategies.coral import Coral
from transferkit.strategies.dann import Dann
from transferkit.strategies.distill import Distill
from transferkit.strategies.feature_extraction import FeatureExtraction
from transferkit.strategies.finetune import Finetune
from transferkit.strategies.lora import Lora
from transferkit.strategies.mmd import Mmd
from transferkit.strategies.multitask import Multitask
from transferkit.strategies.neural import DeltaStrategy
from transferkit.strategies.protonet import Protonet
from transferkit.strategies.pseudo_label import PseudoLabel
from transferkit.strategies.scratch import Scratch
from transferkit.strategies.tfidf import Tfidf, TfidfPredictor
from transferkit.strategies.udalm import Udalm
from transferkit.strategies.word_vectors import WordVectors

STRATEGIES: Registry = Registry("strategy")
for _strategy in (Adapters, Bitfit, Contrastive, Coral, Dann, Dapt, Distill, Ewc, FeatureExtraction, Finetune, Joint, Lora, Lwf, Mmd, Multitask, Protonet, PseudoLabel, Replay, Scratch, Sequential, Tapt, Tfidf, Udalm,
                  WordVectors):
    STRATEGIES.register(_strategy)


def delta_strategy(name: str, options: dict[str, Any], where: str) -> DeltaStrategy:
    """The registered strategy ``name`` with ``options``, to rebuild (``prepare``) or fold (``merge``) a saved delta
    model; ``where`` names the model in errors."""
    strategy_cls = STRATEGIES.get(name)
    if not issubclass(strategy_cls, DeltaStrategy):
        raise UserError(f"{where}: strategy '{name}' saves full weights, not a delta on a base model")
    return strategy_cls(build_dataclass(strategy_cls.Config, options, "model strategy"))

__all__ = ["STRATEGIES", "DeltaStrategy", "delta_strategy", "Adapters", "Bitfit", "Ewc", "Joint", "Lwf", "Replay", "Sequential", "Contrastive", "Coral", "Dann", "Dapt", "Distill", "Mmd", "Multitask", "Protonet", "PseudoLabel", "Tapt", "Udalm", "FeatureExtraction", "Lora", "Finetune", "Scratch", "Tfidf", "TfidfPredictor", "WordVectors"]
