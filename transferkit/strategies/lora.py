"""Parameter-efficient fine-tuning through the ``peft`` library: LoRA, IA³ and prefix tuning.

The pretrained weights ``W₀`` stay frozen; only a small number of new parameters train,
plus the task head:

* ``lora`` (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"):
  ``h = W₀x + (α/r)·B A x`` with ``A ∈ ℝ^{r×d}``, ``B ∈ ℝ^{k×r}``, ``B = 0`` at the start,
  so training begins exactly at the pretrained model; mergeable (``W = W₀ + (α/r)·BA``).
* ``ia3`` (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper
  than In-Context Learning"): learned vectors rescale keys, values and feed-forward
  activations, ``h = l ⊙ (W₀x)``; mergeable.
* ``prefix`` (Li & Liang 2021, "Prefix-Tuning"): trainable key/value vectors prepended at
  every layer's attention; not mergeable.

The run directory stores only the adapter + head weights and a reference to the base model
(a ``DeltaStrategy``); loading rebuilds the base, re-applies this strategy and loads the delta.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import nn

from transferkit.core.config import option
from transferkit.core.errors import UserError
from transferkit.strategies.common import optimizer_groups, set_trainable
from transferkit.strategies.neural import DeltaStrategy

# Attention projections adapted by default, per architecture (peft's own table first).
DEFAULT_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"],
    "mpnet": ["q", "v"],
    "distilbert": ["q_lin", "v_lin"],
    "encoder-decoder": ["query", "value"],  # BERT2BERT: self- and cross-attention of both sides
}


@dataclass
class LoraConfig:
    method: Literal["lora", "ia3", "prefix"] = option("lora", "peft method: lora, ia3 or prefix (prefix tuning)")
    r: int = option(8, "LoRA rank r of the update B·A")
    alpha: float = option(16.0, "LoRA scaling: the update is multiplied by alpha / r")
    dropout: float = option(0.1, "dropout on the LoRA input")
    target_modules: list[str] | None = option(
        None, "module names to adapt (suffix match, e.g. [query, value]); default: the architecture's attention projections")
    num_virtual_tokens: int = option(20, "prefix tuning: trainable key/value positions per layer")


def linear_module_names(model: nn.Module) -> list[str]:
    """Distinct short names of the linear layers a target can match (e.g. ``query``, ``output.dense``)."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            parts = [p for p in name.split(".") if not p.isdigit()]
            names.add(".".join(parts[-2:]) if parts[-1] == "dense" else parts[-1])
    return sorted(names)


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def check_targets(backbone: nn.Module, targets: list[str]) -> None:
    """Every target must match at least one module; otherwise name the modules that exist."""
    names = [name for name, _ in backbone.named_modules()]
    missing = [t for t in targets if not any(_matches(name, t) for name in names)]
    if missing:
        raise UserError(f"strategy.target_modules: {', '.join(missing)} match no module of this "
                        f"{backbone.config.model_type} model; linear modules found: {', '.join(linear_module_names(backbone))}")


def default_targets(model_type: str, method: str) -> list[str]:
    """peft's per-architecture defaults, else transferkit's table; a clear error when unknown."""
    from peft.utils import constants

    table = (constants.TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING if method == "ia3"
             else constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING)
    targets = table.get(model_type) or DEFAULT_TARGETS.get(model_type)
    if not targets:
        raise UserError(f"no default target modules for model type '{model_type}': set strategy.target_modules")
    return list(targets)


class Lora(DeltaStrategy):
    """Freeze the encoder; train a peft adapter (LoRA by default) and the task head."""

    name: ClassVar[str] = "lora"
    supports: ClassVar[frozenset[str]] = frozenset(
        {"classification", "token_classification", "question_answering", "summarization"})
    # Hu et al. 2021 fine-tune RoBERTa with LoRA at 4e-4..5e-4, peft's examples at 1e-3: at full
    # fine-tuning's 5e-5 the low-rank update barely moves in a few epochs.
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 1e-3}
    Config: ClassVar[type] = LoraConfig

    def peft_config(self, backbone: nn.Module) -> Any:
        """The peft config for ``backbone``; target modules are checked against the model."""
        import peft

        c = self.config
        if c.method == "prefix":
            return peft.PrefixTuningConfig(task_type=peft.TaskType.FEATURE_EXTRACTION, num_virtual_tokens=c.num_virtual_tokens)
        targets = list(c.target_modules) if c.target_modules else default_targets(backbone.config.model_type, c.method)
        check_targets(backbone, targets)
        if c.method == "ia3":
            feedforward = [t for t in targets if t.endswith(("output.dense", "intermediate.dense", "fc2", "lin2"))]
            return peft.IA3Config(target_modules=targets, feedforward_modules=feedforward)
        return peft.LoraConfig(r=c.r, lora_alpha=c.alpha, lora_dropout=c.dropout, target_modules=targets)

    def prepare(self, model: Any) -> Any:
        import peft

        set_trainable(list(model.backbone.named_parameters()), False)
        model.backbone = peft.get_peft_model(model.backbone, self.peft_config(model.backbone))
        set_trainable(list(model.head.named_parameters()), True)
        for param in model.new_parameters():  # e.g. BERT2BERT cross-attention: random, must train
            param.requires_grad_(True)
        return model

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list[dict]:
        adapter = [(n, p) for n, p in model.backbone.named_parameters() if p.requires_grad]
        groups = [("adapter", adapter), ("head", list(model.head.named_parameters()))]
        return optimizer_groups(groups, {"adapter": learning_rate, "head": head_learning_rate}, weight_decay)

    def merge(self, model: Any) -> Any:
        """Fold the adapter into the base weights (``W = W₀ + (α/r)·BA``); returns a plain backbone."""
        import peft

        if not isinstance(model.backbone, peft.PeftModel):
            raise UserError("this model has no peft adapter to merge")
        if self.config.method == "prefix":
            raise UserError("prefix-tuning adapters cannot be merged into the base weights (they add key/value "
                            "positions, not a weight update)")
        model.backbone = model.backbone.merge_and_unload()
        return model
