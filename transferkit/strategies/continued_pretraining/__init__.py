"""``dapt`` and ``tapt``: continued masked-LM pretraining, then fine-tuning (Gururangan et al. 2020,
"Don't Stop Pretraining: Adapt Language Models to Domains and Tasks", ACL).

* ``dapt`` (domain-adaptive): pretrain on unlabelled text of the target domain,
  ``data.sources.target_unlabeled``, then fine-tune on the labelled data;
* ``tapt`` (task-adaptive): pretrain on the task's own training texts (labels unused), then fine-tune.

Stage one minimises ``L_mlm`` (:mod:`transferkit.modules.masked_lm`: 15% dynamic masking, optionally
whole-word; an encoder without an MLM head gets one tied to its input embeddings) and is run by
:mod:`.stage` inside :meth:`ContinuedPretraining.source_model`, which logs the held-out MLM loss curve, caches the adapted
encoder (one per corpus and options: the seeds of a grid share it) and links it into the run as
``adapted_encoder/``, a model directory any strategy can start from.  Stage two is ``finetune`` with
all of its options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from transferkit.core.config import option
from transferkit.core.contracts import RunContext
from transferkit.core.errors import UserError
from transferkit.models.loading import LoadedModel
from transferkit.strategies.continued_pretraining.stage import MaskedLMConfig, Pretraining, continue_pretraining
from transferkit.strategies.domain_alignment import TARGET
from transferkit.strategies.finetune import Finetune, FinetuneConfig


@dataclass
class ContinuedPretrainingConfig(FinetuneConfig):
    mlm_epochs: int = option(3, "passes of masked-LM pretraining over the unlabelled corpus")
    mlm_learning_rate: float = option(1e-4, "peak learning rate of the masked-LM stage")
    mlm_batch_size: int = option(32, "texts per masked-LM step")
    mlm_max_steps: int | None = option(None, "cap on masked-LM steps (large corpora); null = mlm_epochs passes")
    mlm_probability: float = option(0.15, "share of tokens masked (80% [MASK], 10% random, 10% kept)")
    whole_word_masking: bool = option(False, "mask every piece of a picked word together")
    heldout_fraction: float = option(0.1, "share of the corpus (at most 500 texts) held out for the MLM loss curve")
    head_warmup_epochs: int = option(1, "epochs training a new MLM head with the encoder frozen first (its held-out "
                                        "loss is the unadapted encoder's); unused when the model has a head")
    head_warmup_learning_rate: float = option(1e-3, "learning rate of the head warm-up (a new head starts far from useful)")
    mlm_seed: int = option(0, "seed of the masked-LM stage (fixed, so every training.seed shares one adapted encoder)")


class ContinuedPretraining(Finetune):
    """Masked-LM pretraining on ``corpus``, then fine-tuning (see the module docstring)."""

    supports: ClassVar[frozenset[str]] = frozenset({"classification", "token_classification", "question_answering"})
    Config: ClassVar[type] = ContinuedPretrainingConfig
    corpus: ClassVar[str]

    def check_task(self, task_cls: type) -> None:
        c = self.config
        if c.mlm_epochs < 1 or c.mlm_batch_size < 1 or c.head_warmup_epochs < 0 or c.head_warmup_learning_rate <= 0:
            raise UserError("strategy.mlm_epochs and strategy.mlm_batch_size must be >= 1, head_warmup_epochs >= 0, "
                            "head_warmup_learning_rate > 0")
        if not 0 < c.mlm_probability < 1 or not 0 < c.heldout_fraction < 1:
            raise UserError("strategy.mlm_probability and strategy.heldout_fraction must lie strictly between 0 and 1")

    def source_model(self, ctx: RunContext) -> LoadedModel:
        """The source model after the masked-LM stage on this strategy's corpus."""
        loaded = super().source_model(ctx)
        corpus = ctx.splits.train if self.corpus == "train" else ctx.source(self.corpus)
        return continue_pretraining(ctx, loaded, ctx.task.input_texts(corpus), self.pretraining())

    def pretraining(self) -> Pretraining:
        """The stage this strategy runs: its corpus and the ``mlm_*`` options."""
        c = self.config
        return Pretraining(self.corpus, MaskedLMConfig(
            epochs=c.mlm_epochs, learning_rate=c.mlm_learning_rate, batch_size=c.mlm_batch_size, max_steps=c.mlm_max_steps,
            mlm_probability=c.mlm_probability, whole_word_masking=c.whole_word_masking,
            heldout_fraction=c.heldout_fraction, head_warmup_epochs=c.head_warmup_epochs,
            head_warmup_learning_rate=c.head_warmup_learning_rate, seed=c.mlm_seed))


class Dapt(ContinuedPretraining):
    """Domain-adaptive pretraining on ``data.sources.target_unlabeled``, then fine-tuning."""

    name: ClassVar[str] = "dapt"
    requires: ClassVar[frozenset[str]] = frozenset({TARGET})
    corpus: ClassVar[str] = TARGET


class Tapt(ContinuedPretraining):
    """Task-adaptive pretraining on the training texts themselves, then fine-tuning."""

    name: ClassVar[str] = "tapt"
    corpus: ClassVar[str] = "train"
