"""The continued-pretraining stage of ``dapt``, ``tapt`` and ``udalm``: masked-LM training of the source encoder
before its task run (Gururangan et al. 2020, "Don't Stop Pretraining": DAPT on domain text, TAPT on the task's
own text).

:func:`continue_pretraining` runs between loading the source model and building the task model:

1. holds out ``heldout_fraction`` of the corpus (at most ``MAX_HELDOUT`` texts), masked once with a
   fixed seed, so every evaluation scores the same positions;
2. when the encoder has no MLM head (all-MiniLM-L6-v2 and the other sentence encoders), trains a
   new one, tied to the input embeddings, for ``head_warmup_epochs`` at ``head_warmup_learning_rate``
   with the encoder frozen: the held-out loss after this warm-up is the *unadapted* encoder's, the
   curve's first point (the head keeps learning during step 3, so part of the later drop is the head's);
3. trains encoder + head for ``epochs`` on the rest (dynamic masking), through the one Trainer
   (``ctx.train`` with :class:`MaskedLMObjective`), evaluating the held-out loss after every epoch (best epoch kept);
4. saves the adapted encoder (safetensors, tokenizer, the MLM head beside it) under the cache,
   keyed by everything that determines it (source weights, corpus, options, seed), and hard-links it
   into the run directory as ``adapted_encoder/``: any run can start from it (``model: RUN/adapted_encoder``),
   and runs that share a corpus (seeds of a grid, the pairs of one target domain) pretrain once.

The stage's own seed (``seed``) does not follow ``training.seed``, so every seed of a grid shares one
adapted encoder, as Gururangan et al. pretrain once and fine-tune with several seeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from transferkit.core.config import TrainingConfig
from transferkit.core.contracts import Callback, Losses, RunContext
from transferkit.core.errors import UserError
from transferkit.data.collate import PaddingCollator
from transferkit.data.sources import SingleSource
from transferkit.models.loading import LoadedModel, load_backbone, save_backbone
from transferkit.modules.masked_lm import MaskedLanguageModel, MaskedLMHead, MaskingVocabulary, mask_tokens
from transferkit.strategies.common import body_and_head_groups

logger = logging.getLogger("transferkit")

MAX_HELDOUT = 500
"""At most this many held-out texts score the MLM loss curve."""
CURVE_FILE = "pretraining.json"
ADAPTED = "adapted_encoder"
"""The run directory's link to the adapted encoder (a model directory any run can start from)."""


@dataclass
class MaskedLMConfig:
    """The options of the continued-pretraining stage, as the stage reads them."""

    epochs: int = 3
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_steps: int | None = None
    mlm_probability: float = 0.15
    whole_word_masking: bool = False
    heldout_fraction: float = 0.1
    head_warmup_epochs: int = 1
    head_warmup_learning_rate: float = 1e-3
    seed: int = 0


@dataclass
class Pretraining:
    """One continued-pretraining stage: ``corpus`` names the unlabelled text (``"train"``, the task's own training
    texts, for TAPT, or a data source such as ``target_unlabeled`` for DAPT), ``config`` the stage's options."""

    corpus: str
    config: MaskedLMConfig


class MaskedLMObjective:
    """The Trainer's objective of the stage: every trainable weight of encoder (``body``) + MLM head (``head``),
    ``L_mlm`` (the masked positions' cross-entropy)."""

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float,
                     weight_decay: float) -> list[dict[str, Any]]:
        return body_and_head_groups(model, learning_rate, head_learning_rate, weight_decay)

    def loss(self, model: Any, batch: Any) -> Losses:
        loss = model(batch)
        return Losses(total=loss, parts={"mlm": float(loss.detach())})

    def callbacks(self) -> list[Callback]:
        return []


def cache_key(loaded: LoadedModel, texts: list[str], plan: Pretraining, max_length: int) -> str:
    """sha256 of the source weights' fingerprint, the corpus, the options and ``max_length``."""
    digest = hashlib.sha256()
    digest.update(json.dumps([loaded.fingerprint, asdict(plan.config), max_length], sort_keys=True).encode())
    for text in texts:
        digest.update(text.encode() + b"\x1e")
    return digest.hexdigest()[:24]


def continue_pretraining(ctx: RunContext, loaded: LoadedModel, texts: list[str], plan: Pretraining) -> LoadedModel:
    """The adapted encoder (loaded back from its saved checkpoint, linked into the run as ``adapted_encoder/``);
    ``info["continued_pretraining"]`` holds the curve."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise UserError(f"continued pretraining: the corpus ({plan.corpus}) holds no text")
    max_length = ctx.config.data.max_length
    directory = os.path.join(ctx.cache_dir(), "continued-pretraining", cache_key(loaded, texts, plan, max_length))
    if os.path.isfile(os.path.join(directory, CURVE_FILE)):
        logger.info("continued pretraining: reusing %s", directory)
    else:
        _pretrain(ctx, loaded, texts, plan, directory)
    with open(os.path.join(directory, CURVE_FILE), encoding="utf-8") as handle:
        curve = json.load(handle)
    _link_tree(directory, ctx.run_path(ADAPTED))
    if ctx.config.output:  # where the run directory will hold it once complete
        curve["checkpoint"] = os.path.join(os.path.abspath(ctx.config.output), ADAPTED)
    adapted = load_backbone(directory)
    adapted.info = {**loaded.info, "continued_pretraining": curve}
    return adapted


def _pretrain(ctx: RunContext, loaded: LoadedModel, texts: list[str], plan: Pretraining, directory: str) -> None:
    options, training, max_length = plan.config, ctx.config.training, ctx.config.data.max_length
    tokenizer, backbone = loaded.tokenizer, loaded.backbone
    vocabulary = MaskingVocabulary.from_tokenizer(tokenizer, backbone.get_input_embeddings().weight.shape[0])
    if options.whole_word_masking and vocabulary.word_start is None:
        raise UserError("strategy.whole_word_masking: this tokenizer's pieces do not mark word boundaries")
    train_rows, heldout = _split(tokenizer, texts, max_length, options, vocabulary)
    head = MaskedLMHead.for_backbone(backbone)
    model = MaskedLanguageModel(backbone, head, vocabulary, options.mlm_probability, options.whole_word_masking)
    collator = PaddingCollator(tokenizer.pad_token_id)
    settings = TrainingConfig(epochs=options.epochs, batch_size=options.batch_size, learning_rate=options.learning_rate,
                              seed=options.seed, metric_for_best="mlm_loss", checkpoint_every=0,
                              mixed_precision=training.mixed_precision, progress=training.progress, max_steps=options.max_steps)

    def evaluate(m: Any) -> dict[str, float]:
        return {"mlm_loss": heldout_loss(m, heldout, collator, training.eval_batch_size)}

    started = time.perf_counter()
    points: list[dict[str, Any]] = []
    if head.loaded_from is None and options.head_warmup_epochs > 0:
        backbone.requires_grad_(False)
        warm = replace(settings, epochs=options.head_warmup_epochs, max_steps=None,
                       learning_rate=options.head_warmup_learning_rate)
        ctx.train(MaskedLMObjective(), model, SingleSource.from_config(train_rows, collator, warm), evaluate,
                  training=warm, resumable=False)
        backbone.requires_grad_(True)
    points.append({"step": 0, "mlm_loss": evaluate(model)["mlm_loss"]})
    fit = ctx.train(MaskedLMObjective(), model, SingleSource.from_config(train_rows, collator, settings), evaluate,
                    training=settings, resumable=False)
    points += [{"step": e["step"], "mlm_loss": e["eval"]["mlm_loss"]} for e in fit.history if "eval" in e]
    curve = {"corpus": plan.corpus, "texts": len(train_rows), "heldout_texts": len(heldout),
             "options": asdict(options), "heldout_mlm_loss": points, "before": points[0]["mlm_loss"],
             "after": min(p["mlm_loss"] for p in points[1:]), "steps": fit.steps,
             "seconds": round(time.perf_counter() - started, 1), "head": head.loaded_from or "new, tied to the embeddings"}
    logger.info("continued pretraining on %d texts: held-out MLM loss %.3f -> %.3f in %d steps (%.0f s)",
                len(train_rows), curve["before"], curve["after"], fit.steps, curve["seconds"])
    _save(backbone, tokenizer, head, curve, directory)


def _split(tokenizer: Any, texts: list[str], max_length: int, options: Any, vocabulary: MaskingVocabulary
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training rows, held-out rows masked once with ``options.seed``)."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    rows = [{"input_ids": ids, "attention_mask": mask} for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)]
    order = np.random.default_rng(options.seed).permutation(len(rows))
    count = min(MAX_HELDOUT, int(round(len(rows) * options.heldout_fraction)))
    if count < 1 or count >= len(rows):
        raise UserError(f"continued pretraining: {len(rows)} texts cannot spare a held-out {options.heldout_fraction:.0%} "
                        "(strategy.heldout_fraction); give more text")
    heldout = [rows[i] for i in order[:count]]
    generator = torch.Generator().manual_seed(options.seed)
    masked = []
    for row in heldout:  # one text at a time: no padding to mask around
        ids = torch.tensor([row["input_ids"]])
        corrupted, labels = mask_tokens(ids, torch.ones_like(ids), vocabulary, options.mlm_probability,
                                        options.whole_word_masking, generator)
        masked.append({**row, "input_ids": corrupted[0].tolist(), "labels": labels[0].tolist()})
    return [rows[i] for i in order[count:]], masked


def heldout_loss(model: Any, rows: list[dict[str, Any]], collator: Any, batch_size: int) -> float:
    """Mean MLM cross-entropy over the held-out texts' fixed masked positions (token-weighted)."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = collator(rows[start:start + batch_size])
            masked = int((batch["labels"] != -100).sum())
            total += float(model({k: v.to(device) for k, v in batch.items()})) * masked
            count += masked
    model.train()
    return total / max(count, 1)


def _save(backbone: Any, tokenizer: Any, head: MaskedLMHead, curve: dict[str, Any], directory: str) -> None:
    """Write to ``directory.partial`` then rename: a half-written checkpoint is never reused."""
    partial = directory + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    save_backbone(backbone, tokenizer, partial)
    head.save(partial)
    with open(os.path.join(partial, CURVE_FILE), "w", encoding="utf-8") as handle:
        json.dump(curve, handle, indent=1)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(partial, directory)


def _link_tree(source: str, target: str) -> None:
    """Hard-link (copy where links fail) every file of ``source`` into ``target``."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link, dirs_exist_ok=True)
