"""``contrastive``: SetFit-style few-shot classification (Tunstall et al. 2022, "Efficient Few-Shot
Learning Without Prompts"): contrastive fine-tuning of the sentence encoder on labelled pairs, then the
closed-form logistic head of ``feature_extraction`` on the trained encoder's features.

Training: pairs drawn from the labelled rows by :class:`~transferkit.data.pairs.PairSource` (up to ``R``
rounds, each giving every row one positive and one negative partner: ``2·R·n`` pairs an epoch, linear
in ``n``; fewer rounds where the data has fewer distinct pairs, ``⌈max(P⁺, P⁻)/n⌉``, since more would
only repeat them).  The sampler also pairs multi-label rows (label sets: by overlap, with a Jaccard target), but
the classification task is single-label, so runs are multi-class and the head below is multinomial (a
multi-label task would need one-vs-rest heads).  With the pooled features the
task head would see, ``u = pool(h(x_a))`` and ``v = pool(h(x_b))`` (both sides embedded in one forward
pass), the encoder minimises SetFit's (Sentence-BERT's) cosine-similarity loss::

    L = (1/B) Σ_k (cos(u_k, v_k) − s_k)²          s_k = 1 same class, 0 otherwise

or, with ``loss: contrastive``, Hadsell et al.'s margin loss on the cosine distance
(:mod:`~transferkit.modules.contrastive`).

Head: after training (``EncoderThenHead``'s plan) the training rows are embedded once with the trained
encoder and multinomial logistic regression (scikit-learn, L2, inverse strength ``C``) is fitted on
them and copied into the linear head (:func:`~transferkit.strategies.common.fit_logistic_head`), so the
saved model is an ordinary model.  The head is unfitted during training, so the per-epoch evaluation
is off by default.  Defaults are SetFit's: R = 20, 1 epoch, batch 16, encoder learning rate 2e-5,
the task's pooling (mean for MiniLM).  The cosine loss trains only the directions of the embeddings, so
the head sees unit-length features ``z/‖z‖`` (``task_defaults``: the classification task's ``normalize``
unless the user sets it), as SetFit's does where the sentence encoder ends in a ``Normalize`` module
(all-MiniLM-L6-v2 does).  Measured at 8 SST-2 labels per class over 5 seeds, the same trained encoders
scored 0.629 with the head on raw pooled features and 0.646 on unit-length ones (BBC News, 2 seeds: 0.944
and 0.943).  Inputs are read up to 256 tokens (``data_defaults``; the other strategies' default is 128), the
length SetFit reads with all-MiniLM-L6-v2 (its ``max_seq_length``).  Measured at 8 labels per class over
5 seeds (``benchmarks/fewshot_vs_setfit.py``): on Blitzer et al.'s Amazon reviews, half of them longer than
128 tokens, 256 tokens scored 0.563 against 0.555 at 128, at 2x the CPU time; on BBC News 0.942 against
0.942 (+0.06 points), at 2.4x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from torch import nn

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Losses, RunContext
from transferkit.core.errors import UserError
from transferkit.data.pairs import PairSource
from transferkit.modules.contrastive import ContrastiveLoss, CosineSimilarityLoss
from transferkit.strategies.common import LogisticHeadConfig, fit_logistic_head
from transferkit.strategies.encoder_then_head import EncoderThenHead
from transferkit.strategies.neural import Built


@dataclass
class ContrastiveConfig(LogisticHeadConfig):
    num_iterations: int = option(20, "R: the most pair-sampling rounds per epoch; each gives every labelled example "
                                     "one positive and one negative partner (2·R·n pairs an epoch; SetFit's paper: "
                                     "20); fewer when the data has fewer distinct pairs, ceil(max(P+, P-) / n)")
    loss: Literal["cosine", "contrastive"] = option(
        "cosine", "cosine: (cos(u, v) - s)² (SetFit's default); contrastive: Hadsell et al.'s margin loss on 1 - cos")
    margin: float = option(0.5, "m of the contrastive loss: dissimilar pairs are pushed apart until 1 - cos ≥ m")


class Contrastive(EncoderThenHead):
    """Contrastive fine-tuning of the encoder on labelled pairs, then a closed-form logistic head."""

    name: ClassVar[str] = "contrastive"
    supports: ClassVar[frozenset[str]] = frozenset({"classification"})
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 2e-5, "epochs": 1, "batch_size": 16,
                                                    "eval_every_epoch": False}
    data_defaults: ClassVar[dict[str, Any]] = {"max_length": 256}
    task_defaults: ClassVar[dict[str, Any]] = {"normalize": True}
    Config: ClassVar[type] = ContrastiveConfig

    def check_task(self, task_cls: type) -> None:
        """The options are valid before any work (the data's own limits are checked when the pairs are built)."""
        c = self.config
        if isinstance(c.num_iterations, bool) or not isinstance(c.num_iterations, int) or c.num_iterations < 1:
            raise UserError(f"strategy.num_iterations={c.num_iterations!r}: give the pair-sampling rounds per epoch (>= 1)")
        if not c.margin > 0 or not c.C > 0:
            raise UserError(f"strategy.margin={c.margin} and strategy.C={c.C} must be > 0")

    def train(self, ctx: RunContext, built: Built, features: dict[str, list[dict[str, Any]]], evaluate: Any) -> Any:
        """The pair stage: the Trainer on :meth:`pairs` of the training rows, named by the task's classes."""
        batches = self.pairs(features["train"], built.predictor.collator, ctx.config.training, ctx.task.labels)
        return ctx.train(self, built.model, batches, evaluate)

    def batch_source(self, features: dict[str, list[dict[str, Any]]], collator: Any, config: Any) -> PairSource:
        return self.pairs(features["train"], collator, config, ())

    def pairs(self, rows: list[dict[str, Any]], collator: Any, config: Any, label_names: Any) -> PairSource:
        """``2·R·n`` pairs of ``rows`` an epoch; a class with one example fails here, before training (errors name
        the class by ``label_names``)."""
        return PairSource(rows, collator, config.batch_size, config.seed, self.config.num_iterations,
                          group_by_length=config.group_by_length, label_names=list(label_names))

    def criterion(self) -> nn.Module:
        return CosineSimilarityLoss() if self.config.loss == "cosine" else ContrastiveLoss(self.config.margin)

    def loss(self, model: Any, batch: Batch) -> Losses:
        """The pair loss on the pooled features of both sides, embedded in one encoder pass."""
        embeddings = model.encode(batch)  # (2B, dim): anchors, then their partners
        u, v = embeddings.chunk(2)
        loss = self.criterion()(u, v, batch["similarity"])
        return Losses(total=loss, parts={self.config.loss: float(loss.detach())})

    def fit_head(self, model: Any, features: np.ndarray, labels: np.ndarray, seed: int) -> None:
        """Logistic regression on the trained encoder's features, copied into the linear head."""
        fit_logistic_head(model, features, labels, self.config.C, self.config.max_iter, seed)
