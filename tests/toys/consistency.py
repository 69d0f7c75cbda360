"""A toy two-source strategy, written outside the package: labelled source batches + unlabelled target batches.

Loss: ``L = CE(source) + λ · H(target)``, the mean prediction entropy on the unlabelled target
batch (entropy minimisation, Grandvalet & Bengio 2005), computed in the same step from the
``{"source": batch, "target": batch}`` a :class:`ZippedSources` yields.

Run as ``python -m tests.toys.consistency train ...`` to get the transferkit CLI with it registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Losses
from transferkit.data.sources import SingleSource, ZippedSources
from transferkit.strategies import STRATEGIES
from transferkit.strategies.neural import NeuralStrategy


@dataclass
class ConsistencyConfig:
    weight: float = option(0.1, "λ: weight of the target entropy term")


class ToyConsistency(NeuralStrategy):
    """Full fine-tuning on the source plus entropy minimisation on unlabelled target text (the base class's
    defaults do the rest: every parameter trains, the pretrained transformer is the source)."""

    name: ClassVar[str] = "toy_consistency"
    supports: ClassVar[frozenset[str]] = frozenset({"classification"})
    requires: ClassVar[frozenset[str]] = frozenset({"target_unlabeled"})
    Config: ClassVar[type] = ConsistencyConfig

    def batch_source(self, features: dict[str, list[dict[str, Any]]], collator: Any, config: Any) -> ZippedSources:
        return ZippedSources({"source": SingleSource.from_config(features["train"], collator, config),
                              "target": SingleSource.from_config(features["target_unlabeled"], collator, config,
                                                                 config.seed + 1)})

    def loss(self, model: Any, batch: Batch) -> Losses:
        source = model(batch["source"])
        task = model.task.loss(source, batch["source"])
        probabilities = torch.softmax(model(batch["target"])["logits"], dim=-1)
        entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-8))).sum(-1).mean()
        total = task + self.config.weight * entropy
        return Losses(total, {"task": float(task.detach()), "target_entropy": float(entropy.detach())})


def register() -> None:
    if "toy_consistency" not in STRATEGIES.names():
        STRATEGIES.register(ToyConsistency)


if __name__ == "__main__":
    from transferkit.cli.main import main

    register()
    main()
