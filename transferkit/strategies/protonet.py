"""``protonet``: episodic meta-training of the encoder, then the target's class means as the head
(Snell, Swersky & Zemel 2017, "Prototypical Networks for Few-shot Learning").

Training: every step is one N-way K-shot episode (:class:`~transferkit.data.episodes.EpisodeSource`)
drawn from the run's labelled training rows, or, with labelled data sources (``data.sources.NAME``
with a ``label_column``, read with the run's labels: more data of the same classes), from one of
those datasets per episode.  With the pooled encoder features ``z = pool(h(x))`` the loss is::

    c_n = (1/K) Σ_{s ∈ S_n} z_s                    (prototype of episode class n: its support mean)
    L   = (1/|Q|) Σ_{(x, n) ∈ Q} -log softmax_m(-‖z_x - c_m‖²)[n]

(:class:`~transferkit.modules.prototypical.PrototypicalLoss`).  Episode-local labels make the
encoder learn a metric space in which classes cluster, rather than a fixed set of output units.
The episode shape is resolved from the data: ``N = min(ways, classes)``, and ``K``, ``Q`` shrink so
that ``K + Q`` fits the smallest class (K = min(shots, m - 1), Q = min(queries, m - K) for a smallest
class of ``m`` rows; the run's log says what was used).  ``training.batch_size`` does not apply:
one episode of N·(K + Q) rows is one batch.

Head: after training (``EncoderThenHead``'s plan) the training rows are encoded once with the trained
encoder and every class's prototype ``c_k`` (the mean over *all* its training rows) is written into
the linear output layer: ``-‖z - c_k‖² = 2 c_k·z - ‖c_k‖² - ‖z‖²``, and ``-‖z‖²`` is the same for
every class, so ``W_k = 2 c_k, b_k = -‖c_k‖²`` gives exactly the distance classifier's softmax and
argmax.  The saved model is an ordinary model.  The linear head is unfitted during training, so a run is
evaluated only once the head is written: no per-epoch evaluation and no checkpoint selection (the last step is kept).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Losses
from transferkit.core.errors import UserError
from transferkit.data.episodes import QUERY, EpisodeShape, EpisodeSource
from transferkit.modules.prototypical import PrototypicalLoss, class_prototypes, prototype_linear
from transferkit.strategies.encoder_then_head import EncoderThenHead

logger = logging.getLogger("transferkit")


@dataclass
class ProtonetConfig:
    ways: int = option(5, "N: classes per training episode (Snell et al.'s 5-way test episodes; capped at the "
                          "number of classes)")
    shots: int = option(5, "K: support examples per class and episode (lowered when a class is too small for K + Q)")
    queries: int = option(5, "Q: query examples per class and episode (Snell et al.: 5 on Omniglot; lowered when a "
                             "class is too small)")
    episodes: int = option(0, "episodes (optimiser steps) per epoch; 0 = about one pass over the labelled rows, "
                              "ceil(rows / (N·(K + Q)))")


class Protonet(EncoderThenHead):
    """Prototypical networks: episodic meta-training of the encoder, class means written into the head."""

    name: ClassVar[str] = "protonet"
    supports: ClassVar[frozenset[str]] = frozenset({"classification"})
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 5e-5, "eval_every_epoch": False}
    Config: ClassVar[type] = ProtonetConfig

    def check_task(self, task_cls: type) -> None:
        """The configured episode shape is valid before any work (data-dependent limits come with the data)."""
        EpisodeShape(self.config.ways, self.config.shots, self.config.queries).check()
        if isinstance(self.config.episodes, bool) or not isinstance(self.config.episodes, int) or self.config.episodes < 0:
            raise UserError(f"strategy.episodes={self.config.episodes!r}: give episodes per epoch (>= 1), or 0 for "
                            "one pass over the labelled rows")

    def episode_shape(self, datasets: dict[str, list[np.ndarray]]) -> EpisodeShape:
        """N, K, Q for these datasets (``{name: (rows,) labels}``): what the smallest class and dataset allow."""
        sizes = {name: np.bincount(labels) for name, labels in datasets.items()}
        classes = {name: int((counts > 0).sum()) for name, counts in sizes.items()}
        name, few = min(classes.items(), key=lambda item: item[1])
        if few < 2:
            raise UserError(f"strategy 'protonet' needs at least 2 classes for its episodes; {name} has {few}")
        smallest = {name: int(counts[counts > 0].min()) for name, counts in sizes.items()}
        name, rows = min(smallest.items(), key=lambda item: item[1])
        if rows < 2:
            raise UserError(f"strategy 'protonet' needs at least 2 labelled examples per class for its episodes "
                            f"(1 support + 1 query); a class of {name} has {rows}: raise data.budget to 2 or more")
        shots = min(self.config.shots, rows - 1)
        shape = EpisodeShape(min(self.config.ways, few), shots, min(self.config.queries, rows - shots))
        if shape != EpisodeShape(self.config.ways, self.config.shots, self.config.queries):
            logger.info("protonet: %s episodes (the smallest class has %d examples, %d classes)", shape.describe(),
                        rows, few)
        return shape

    def batch_source(self, features: dict[str, list[dict[str, Any]]], collator: Any, config: Any) -> EpisodeSource:
        """One episode per step from the training rows and every labelled data source."""
        unlabelled = [name for name, rows in features.items() if rows and "labels" not in rows[0]]
        if unlabelled:
            raise UserError(f"data.sources.{unlabelled[0]}: strategy 'protonet' draws episodes from labelled data; "
                            "give the source a label_column (or leave it out)")
        datasets = {name: rows for name, rows in features.items() if rows}
        shape = self.episode_shape({name: np.asarray([row["labels"] for row in rows]) for name, rows in datasets.items()})
        rows = sum(len(rows) for rows in datasets.values())
        episodes = self.config.episodes or math.ceil(rows / shape.size)
        return EpisodeSource(datasets, collator, shape, episodes, config.seed)

    def loss(self, model: Any, batch: Batch) -> Losses:
        """The prototypical loss of one episode on the pooled features the head would see."""
        out = PrototypicalLoss()(model.encode(batch), batch["labels"], batch["episode_role"] == QUERY)
        return Losses(total=out.loss, parts={"prototypical": float(out.loss.detach()),
                                             "query_accuracy": float(out.accuracy)})

    def fit_head(self, model: Any, features: np.ndarray, labels: np.ndarray, seed: int) -> None:
        """Every class's prototype (mean trained feature) as ``W_k = 2 c_k, b_k = -‖c_k‖²`` (module docstring)."""
        layer = model.head.output_layer()
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=layer.out_features)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise UserError(f"strategy 'protonet': class {model.task.labels[int(empty[0])]!r} has no training example, "
                            "so no prototype")
        prototypes = class_prototypes(torch.as_tensor(features, dtype=torch.float64),
                                      torch.as_tensor(labels, dtype=torch.int64), layer.out_features)
        weight, bias = prototype_linear(prototypes)
        with torch.no_grad():
            layer.weight.copy_(weight.to(layer.weight.dtype))
            layer.bias.copy_(bias.to(layer.bias.dtype))
