"""``udalm``: DAPT, then fine-tuning on a mixed objective (Karouzos, Paraskevopoulos & Potamianos 2021,
"UDALM: Unsupervised Domain Adaptation through Language Modeling", NAACL).

Stage one is ``dapt`` (masked-LM pretraining on ``data.sources.target_unlabeled``).  Stage two keeps
the MLM head and steps one labelled source batch and one unlabelled target batch together
(:class:`~transferkit.data.sources.ZippedSources`, an epoch = a pass over the source):

    L = L_task(source) + λ · L_mlm(target)

so the encoder keeps modelling target-domain text while it learns the task (the paper's
``λ L_clf + (1 − λ) L_mlm`` up to a rescaling of the learning rate).  The MLM head lives in
``model.auxiliary`` (trained at the head's learning rate, not saved with the task model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from transferkit.core.config import option
from transferkit.core.contracts import Batch, Losses
from transferkit.core.errors import UserError
from transferkit.data.sources import SingleSource, ZippedSources
from transferkit.modules.masked_lm import MaskedLMHead, MaskingVocabulary, mask_tokens, masked_lm_loss
from transferkit.strategies.common import auxiliary_groups, set_trainable
from transferkit.strategies.continued_pretraining import ContinuedPretrainingConfig, Dapt
from transferkit.strategies.domain_alignment import TARGET, warn_if_same_text


@dataclass
class UdalmConfig(ContinuedPretrainingConfig):
    mlm_weight: float = option(1.0, "λ: weight of the target masked-LM loss beside the task loss on the source")


class Udalm(Dapt):
    """DAPT, then ``L_task(source) + λ · L_mlm(target)`` in every step."""

    name: ClassVar[str] = "udalm"
    supports: ClassVar[frozenset[str]] = frozenset({"classification"})
    Config: ClassVar[type] = UdalmConfig

    def check_task(self, task_cls: type) -> None:
        super().check_task(task_cls)
        if self.config.mlm_weight <= 0:
            raise UserError(f"strategy.mlm_weight={self.config.mlm_weight}: the masked-LM weight λ must be > 0")

    def prepare(self, model: Any) -> Any:
        """Fine-tuning's trainable groups plus the MLM head the DAPT stage trained (``model.auxiliary["mlm"]``).

        The DAPT stage saved encoder, tokenizer and head together; the backbone was loaded from there."""
        from transformers import AutoTokenizer

        backbone = model.backbone
        head = MaskedLMHead.for_backbone(backbone)
        tokenizer = AutoTokenizer.from_pretrained(backbone.config.name_or_path)
        # the tokenizer's masking tables travel with the head that predicts the masked tokens
        head.masking = MaskingVocabulary.from_tokenizer(tokenizer, backbone.get_input_embeddings().weight.shape[0])
        model.auxiliary["mlm"] = head
        super().prepare(model)
        set_trainable(list(model.auxiliary.named_parameters()), True)
        return model

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list[dict]:
        groups = super().param_groups(model, learning_rate, head_learning_rate, weight_decay)
        return groups + auxiliary_groups(model, head_learning_rate, weight_decay)

    def batch_source(self, features: dict[str, list[dict[str, Any]]], collator: Any, config: Any) -> ZippedSources:
        warn_if_same_text(features["train"], features[TARGET])
        target = [{key: row[key] for key in ("input_ids", "attention_mask") if key in row} for row in features[TARGET]]
        return ZippedSources({"source": SingleSource.from_config(features["train"], collator, config),
                              "target": SingleSource.from_config(target, collator, config, config.seed + 1)}, lead="source")

    def loss(self, model: Any, batch: Batch) -> Losses:
        source, target = batch["source"], batch["target"]
        task = model.task.loss(model(source), source)
        head = model.auxiliary["mlm"]
        ids, labels = mask_tokens(target["input_ids"], target["attention_mask"], head.masking,
                                  self.config.mlm_probability, self.config.whole_word_masking)
        mlm = masked_lm_loss(model.backbone, head, ids, target["attention_mask"], labels)
        total = task + self.config.mlm_weight * mlm
        return Losses(total, {"task": float(task.detach()), "mlm": float(mlm.detach())})
