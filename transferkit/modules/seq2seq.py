"""``Seq2SeqTaskModel``: an encoder–decoder language model driven by a generation task.

Two sources are accepted:

* a checkpoint that already is an encoder–decoder (``config.is_encoder_decoder``: T5, BART,
  mBART, Pegasus ...), loaded with ``AutoModelForSeq2SeqLM``;
* an encoder-only checkpoint (BERT, RoBERTa, MiniLM ...), **warm-started** into an
  ``EncoderDecoderModel`` (Rothe, Narayan & Severyn 2020, "Leveraging Pre-trained
  Checkpoints for Sequence Generation Tasks", TACL): the encoder is the checkpoint; the
  decoder is the same architecture with causal self-attention, initialised from the same
  checkpoint, plus cross-attention layers (new, random) and an LM head whose output matrix
  is tied to the decoder's input embeddings (its transform is new unless the checkpoint has
  an MLM head).  ``pretrained=False`` builds the identical architecture with random weights
  everywhere: the no-transfer baseline.

Training is teacher forcing: decoder inputs are the labels shifted right behind the
decoder start token, ``L = -Σ_t log p(y_t | y_<t, x)`` over non-padding target tokens.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn
from transformers import EncoderDecoderModel, PreTrainedModel

from transferkit.core.contracts import IGNORE_INDEX

logger = logging.getLogger("transferkit")

ENCODER_INPUTS = ("input_ids", "attention_mask")


def warm_start(encoder: PreTrainedModel, tokenizer: Any, pretrained: bool = True
               ) -> tuple[EncoderDecoderModel, list[nn.Parameter]]:
    """BERT2BERT: ``encoder`` plus a decoder copied from it; returns (model, the parameters that are new).

    New = not in the checkpoint: cross-attention and the LM head's transform (everything in
    the decoder when ``pretrained`` is false).  See the module docstring.
    """
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(encoder.config)
    config.is_decoder, config.add_cross_attention = True, True
    try:
        decoder = AutoModelForCausalLM.from_config(config)
    except ValueError as exc:
        raise ValueError(f"model type '{config.model_type}' has no causal-LM decoder class to warm-start from") from exc
    loaded: set[int] = set()
    if pretrained:
        base = getattr(decoder, decoder.base_model_prefix)
        missing, _ = base.load_state_dict(encoder.state_dict(), strict=False)
        names = dict(base.named_parameters())
        loaded = {id(names[name]) for name in encoder.state_dict() if name in names}
        cross = sum("cross" in name for name in missing)
        logger.info("warm start: decoder initialised from the encoder checkpoint; %d new tensors (%d cross-attention)",
                    len(missing), cross)
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    drop_pooler(model)
    model.config.vocab_size = decoder.config.vocab_size
    set_special_tokens(model, tokenizer)
    return model, [p for p in decoder.parameters() if id(p) not in loaded]


def drop_pooler(model: PreTrainedModel) -> PreTrainedModel:
    """Remove the encoder's sentence pooler (unused by a decoder; unused parameters upset DDP)."""
    encoder = getattr(model, "encoder", None)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return model


def set_special_tokens(model: PreTrainedModel, tokenizer: Any) -> None:
    """Decoder start / end / padding ids: ``[CLS]`` / ``[SEP]`` / ``[PAD]`` for BERT-style vocabularies."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = start
        config.eos_token_id = end
        config.pad_token_id = tokenizer.pad_token_id


def shift_right(labels: torch.Tensor, start: int, pad: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: ``[start, y_1 … y_{T-1}]`` with ignored positions (-100) as padding."""
    shifted = labels.new_full(labels.shape, pad)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = start
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad)


class Seq2SeqTaskModel(nn.Module):
    """An encoder–decoder LM plus the task that owns its loss and decoding.

    ``backbone`` is the whole encoder–decoder (strategies split it into layer groups:
    embeddings, encoder layers, decoder layers, the LM head); ``head`` is empty because the
    output layer is part of the language model.  ``layer`` is -1 (always the last layer).
    ``new`` lists the parameters that are not in the source checkpoint.
    """

    def __init__(self, backbone: PreTrainedModel, task: Any, new: list[nn.Parameter] | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Module()
        self.task = task
        self.layer = -1
        self.auxiliary = nn.ModuleDict()
        self._new = list(new or [])

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters the source checkpoint did not provide (e.g. BERT2BERT cross-attention): adapters
        such as LoRA must train them, since a frozen random layer transfers nothing."""
        return list(self._new)

    def saved_state(self) -> dict[str, torch.Tensor]:
        """The weights a saved model holds (training-only ``auxiliary`` modules left out)."""
        return {k: v.detach().contiguous().clone() for k, v in self.state_dict().items() if not k.startswith("auxiliary.")}

    def _inner(self) -> PreTrainedModel:
        """The transformers model under a peft wrapper, if any (it owns ``generate``)."""
        get_base = getattr(self.backbone, "get_base_model", None)
        return get_base() if get_base is not None else self.backbone

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        config = self._inner().config
        decoder_inputs = batch.get("decoder_input_ids")
        if decoder_inputs is None:
            decoder_inputs = shift_right(batch["labels"], config.decoder_start_token_id, config.pad_token_id)
        inputs = {k: batch[k] for k in ENCODER_INPUTS if k in batch}
        outputs = self.backbone(**inputs, decoder_input_ids=decoder_inputs, use_cache=False)
        return {"logits": outputs.logits, "features": outputs.encoder_last_hidden_state}

    def generate_ids(self, batch: dict[str, torch.Tensor], **options: Any) -> torch.Tensor:
        """Beam search (``options``: num_beams, length_penalty, max_new_tokens ...) -> (batch, length) ids."""
        inputs = {k: batch[k] for k in ENCODER_INPUTS if k in batch}
        return self._inner().generate(**inputs, **options)
