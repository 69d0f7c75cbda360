"""How a run's ``model/`` directory meets transformers: it loads there exactly, or transformers refuses it.

A saved neural model is written in one of two layouts, recorded under ``layout`` in ``transferkit.json``.

**transformers**: the task's head maps exactly onto a transformers model with a head (the task hook
``transformers_head``), and the run holds full weights:

* token classification -> ``AutoModelForTokenClassification`` (e.g. ``BertForTokenClassification``):
  ``backbone.*`` -> ``{base}.*``, ``head.classifier.*`` -> ``classifier.*``;
* question answering -> ``AutoModelForQuestionAnswering``: ``backbone.*`` -> ``{base}.*``,
  ``head.classifier.*`` -> ``qa_outputs.*`` (start = ``logits[..., 0]``, end = ``logits[..., 1]``);
* summarization -> ``AutoModelForSeq2SeqLM`` (``EncoderDecoderModel`` for BERT2BERT, T5, BART ...):
  ``backbone.*`` -> ``*``.

(``{base}`` is the backbone's ``base_model_prefix``, e.g. ``bert``.)  ``config.json`` is the backbone's
config plus ``architectures`` and ``id2label``/``label2id`` (the run's labels), and ``model.safetensors``
uses transformers' key names, so ``AutoModelFor...`` and ``pipeline`` load it with the run's labels and
logits.  The mapping is checked against the transformers class built on the meta device: every key and
shape must match except the encoder's sentence pooler (``*.pooler.*``), which none of these heads read:
``BertForTokenClassification`` has none, so transformers reports the saved ``bert.pooler.*`` as unexpected
(kept, so the directory still holds the whole trained encoder); ``EncoderDecoderModel`` builds one that
BERT2BERT dropped, so transformers reports it as newly initialised.

**transferkit**: everything else: classification (pooled token states into a linear layer, while
e.g. ``BertForSequenceClassification`` puts a dense + tanh pooler on [CLS]), a head on another layer,
word vectors, multi-task heads, LoRA/BitFit directories that hold only a delta.  The backbone config is
``backbone_config.json`` and ``config.json`` carries a ``model_type`` no transformers version knows,
with the reason in it, so ``AutoConfig``/``AutoModelFor...``/``pipeline`` raise ``ValueError: The
checkpoint you are trying to load has model type `transferkit: not a transformers checkpoint (...)` ...``.

Directories written before layouts existed (no ``layout``) still load in transferkit.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from transferkit.core.errors import UserError

WEIGHTS = "model.safetensors"
BACKBONE_CONFIG = "backbone_config.json"
CONVERTIBLE = ("transformers can load token_classification and question_answering runs whose head reads the last "
               "layer of a transformers encoder, and summarization runs (lora/bitfit runs are merged first); "
               "classification heads pool token states into a linear layer, which no transformers "
               "...ForSequenceClassification does")


@dataclass
class Layout:
    """Where a model's weights go: ``architecture`` (a transformers class name) or None for the transferkit layout.

    ``keys`` maps transferkit key prefixes to transformers ones; ``reason`` says why there is no transformers layout.
    """

    architecture: str | None
    keys: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    def describe(self) -> dict[str, Any]:
        """The ``layout`` entry of ``transferkit.json``."""
        if self.architecture is None:
            return {"format": "transferkit", "reason": self.reason}
        return {"format": "transformers", "architecture": self.architecture, "keys": self.keys}


def plan_layout(model: Any, state: dict[str, torch.Tensor], delta_of: str | None = None) -> Layout:
    """The layout of ``model`` saved as ``state``; ``delta_of`` names the strategy when ``state`` is only a delta."""
    if delta_of is not None:
        return Layout(None, reason=f"it stores only a {delta_of} delta on its base model; transferkit export "
                                   "RUN --format transformers merges it into a full model where the head allows")
    task = model.task
    declared = task.transformers_head(model)
    where = (f"the {task.name} head ({type(model.head).__name__} on layer {model.layer} of a "
             f"{type(model.backbone).__name__})")
    if declared is None:
        return Layout(None, reason=f"{where} has no exact transformers equivalent")
    auto_name, keys = declared
    import transformers

    config = labelled_config(model.backbone.config, task.labels)
    try:
        with torch.device("meta"):  # shapes and names only: no memory, no random draws
            target = getattr(transformers, auto_name).from_config(config)
    except ValueError:
        return Layout(None, reason=f"{where}: transformers has no {auto_name} for {type(config).__name__}")
    shapes = {name: tuple(tensor.shape) for name, tensor in target.state_dict().items()}
    mismatch = _compare(state, shapes, keys)
    if mismatch:
        return Layout(None, reason=f"{where} does not fit {type(target).__name__} ({mismatch})")
    return Layout(type(target).__name__, keys)


def _compare(state: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]], keys: dict[str, str]) -> str:
    """'' or what does not fit: every weight needs its place and every place its weight, with equal shapes;
    only sentence-pooler weights may be on one side only (no mapped head reads them)."""
    renamed = {name: rename(name, keys) for name in state}
    extra = [name for name, new in renamed.items() if new is None or (new not in shapes and not _is_pooler(new))]
    placed = set(renamed.values())
    missing = [new for new in shapes if new not in placed and not _is_pooler(new)]
    wrong = [name for name, new in renamed.items() if new in shapes and tuple(state[name].shape) != shapes[new]]
    for label, names in (("no place for", extra), ("no weights for", missing), ("other shape of", wrong)):
        if names:
            return f"{label} {names[0]}"
    return ""


def _is_pooler(key: str) -> bool:
    return ".pooler." in f".{key}"


def rename(key: str, keys: dict[str, str]) -> str | None:
    """``key`` with its longest matching prefix replaced (``backbone.x`` -> ``bert.x``), or None if none matches."""
    for prefix in sorted(keys, key=len, reverse=True):
        if key.startswith(prefix):
            return keys[prefix] + key[len(prefix):]
    return None


def labelled_config(config: Any, labels: list[str], architecture: str | None = None) -> Any:
    """A copy of the backbone config with the run's labels as ``id2label``/``label2id`` (and ``architectures``)."""
    config = copy.deepcopy(config)
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: index for index, label in enumerate(labels)}
    if architecture is not None:
        config.architectures = [architecture]
    return config


def write_model(directory: str, config: Any, state: dict[str, torch.Tensor], layout: Layout, labels: list[str]) -> None:
    """config.json (+ backbone_config.json) and model.safetensors of ``state`` in ``layout``."""
    if layout.architecture is not None:
        labelled_config(config, labels, layout.architecture).save_pretrained(directory)
        state = {rename(name, layout.keys): tensor for name, tensor in state.items()}
    else:
        config.to_json_file(os.path.join(directory, BACKBONE_CONFIG))
        with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as handle:
            json.dump(guard_config(layout.reason), handle, indent=2)
    save_file(state, os.path.join(directory, WEIGHTS))


def guard_config(reason: str) -> dict[str, Any]:
    """A config.json transformers refuses: its ``model_type`` is no architecture and says what to do instead."""
    note = f"not a transformers checkpoint ({reason}); load its run with transferkit.load(RUN_DIR)"
    return {"model_type": f"transferkit: {note}",
            "transferkit": {"note": note, "backbone_config": BACKBONE_CONFIG, "convertible": CONVERTIBLE}}


def backbone_config(directory: str, meta: dict[str, Any]) -> Any:
    """The backbone's transformers config, wherever the layout put it."""
    from transformers import AutoConfig

    if meta.get("layout", {}).get("format") == "transferkit":
        return AutoConfig.from_pretrained(os.path.join(directory, BACKBONE_CONFIG))
    return AutoConfig.from_pretrained(directory)


def read_state(directory: str, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """model.safetensors with transferkit's key names (mapped back from transformers' names)."""
    state = load_file(os.path.join(directory, WEIGHTS))
    layout = meta.get("layout", {})
    if layout.get("format") != "transformers":
        return state
    back = {new: old for old, new in layout["keys"].items()}
    return {rename(name, back): tensor for name, tensor in state.items()}


def load_weights(model: Any, directory: str, meta: dict[str, Any]) -> None:
    """Load a full (not delta) saved model into ``model``, every weight in its place."""
    missing, unexpected = model.load_state_dict(read_state(directory, meta), strict=False)
    if missing or unexpected:
        raise UserError(f"{directory}: {WEIGHTS} does not fit the saved architecture "
                        f"(missing: {sorted(missing)[:3]}, unexpected: {sorted(unexpected)[:3]})")
