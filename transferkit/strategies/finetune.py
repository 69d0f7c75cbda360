"""Full or partial fine-tuning with discriminative learning rates and gradual unfreezing.

* ``freeze_layers=k``: embeddings + the bottom k transformer layers get no gradients and
  no optimizer state (backward stops at the first trainable layer).
* ``layerwise_lr_decay=ξ``: group at depth d below the head trains with ``lr · ξ^d``
  (Howard & Ruder 2018, ULMFiT "discriminative fine-tuning"; Sun et al. 2019 for BERT).
* ``gradual_unfreeze``: epoch 0 trains the head only; each further epoch unfreezes the next
  group from the top (ULMFiT).
* ``freeze_word_embeddings``: the input word-embedding matrix ``E ∈ R^{|V|×d}`` stays fixed.  By
  default (``auto``) only for vocabularies of ``LARGE_VOCABULARY`` rows or more: multilingual
  encoders (XLM-R's |V| = 250k: 96M of multilingual-e5-small's 118M parameters) would otherwise
  pay a dense gradient and two AdamW moments for all of E every step, although a target dataset
  touches a few thousand rows (and the untouched rows would not move anyway).  Frozen, E carries
  no gradient and no optimizer state; position/type embeddings and the embedding LayerNorm train.
  ``auto`` never freezes random weights (``scratch``): a fixed random E would transfer nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from transferkit.core.config import option
from transferkit.core.contracts import Callback, TrainState
from transferkit.core.errors import UserError
from transferkit.strategies.common import named_groups, optimizer_groups, set_trainable
from transferkit.strategies.neural import NeuralStrategy


@dataclass
class FinetuneConfig:
    freeze_layers: int = option(0, "freeze embeddings + the bottom k transformer layers (0 = train everything)")
    layerwise_lr_decay: float = option(1.0, "multiply the learning rate by this per layer going down (1 = uniform)")
    gradual_unfreeze: bool = option(False, "ULMFiT: train the head first, unfreeze one group per epoch from the top")
    freeze_word_embeddings: Literal["auto", "true", "false"] = option(
        "auto", "keep the input word-embedding matrix fixed; auto = when the vocabulary has >= 100,000 rows "
                "(multilingual models: no gradient or optimizer state for 250k rows the data barely uses) "
                "unless the weights are random (scratch)")


LARGE_VOCABULARY = 100_000
"""``freeze_word_embeddings: auto`` freezes the word embeddings of vocabularies at least this large."""


class Finetune(NeuralStrategy):
    """Adapt every (unfrozen) weight of a pretrained encoder to the task."""

    name: ClassVar[str] = "finetune"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"classification", "token_classification", "question_answering", "summarization"})
    Config: ClassVar[type] = FinetuneConfig

    def trainable_groups(self, model: Any) -> list[tuple[str, list]]:
        """Groups that ever train: all but embeddings + the bottom ``freeze_layers`` layers.

        Empty groups are left out (a seq2seq LM has no separate head: its top group is the LM head).
        """
        groups = named_groups(model)
        layers = [name for name, _ in groups if name.startswith("layer.")]
        k = self.config.freeze_layers
        if not 0 <= k <= len(layers):
            raise UserError(f"strategy.freeze_layers={k}: the model has {len(layers)} layers; use 0..{len(layers)}")
        frozen = {"embeddings", *layers[:k]} if k > 0 else set()
        fixed = self.fixed_parameters(model)
        kept = [(name, [(n, p) for n, p in params if id(p) not in fixed]) for name, params in groups if name not in frozen]
        return [(name, params) for name, params in kept if params]

    def fixed_parameters(self, model: Any) -> set[int]:
        """ids of parameters that never train whatever the layer settings: the word embeddings when frozen."""
        embeddings = model.backbone.get_input_embeddings()
        rows = embeddings.weight.shape[0]
        setting = self.config.freeze_word_embeddings
        if setting == "true" or (setting == "auto" and rows >= LARGE_VOCABULARY and not self.random_init):
            return {id(embeddings.weight)}
        return set()

    def prepare(self, model: Any) -> Any:
        set_trainable(list(model.named_parameters()), False)
        for _, params in self.trainable_groups(model):
            set_trainable(params, True)
        return model

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list[dict]:
        groups = self.trainable_groups(model)
        rates = {"head": head_learning_rate}
        backbone = [name for name, _ in groups if name != "head"]
        for depth, name in enumerate(reversed(backbone), start=1):
            rates[name] = learning_rate * self.config.layerwise_lr_decay ** (depth - 1)
        return optimizer_groups(groups, rates, weight_decay)

    def callbacks(self) -> list[Callback]:
        return [GradualUnfreeze(self)] if self.config.gradual_unfreeze else []


class GradualUnfreeze(Callback):
    """At epoch e, the head and the top e trainable groups train; the rest stay frozen.

    The state is a function of the epoch, so a resumed run lands on the same schedule.
    """

    def __init__(self, strategy: Finetune) -> None:
        self.strategy = strategy

    def on_fit_start(self, state: TrainState, model: Any) -> None:
        self.on_epoch_start(state, model)

    def on_epoch_start(self, state: TrainState, model: Any) -> None:
        groups = self.strategy.trainable_groups(model)  # bottom -> top, head last
        cutoff = max(len(groups) - 1 - state.epoch, 0)
        for index, (_, params) in enumerate(groups):
            set_trainable(params, index >= cutoff)
