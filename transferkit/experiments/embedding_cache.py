"""On-disk cache of frozen-encoder features, keyed by content.

A frozen encoder maps the same text to the same vector, so every head, budget and seed
of a grid can share one embedding per distinct text.  Key: (model fingerprint, layer,
pooling, max_length) selects a directory; inside it each text is addressed by the SHA-1
of its content.  New vectors are appended as safetensors chunks written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from transferkit.core.atomic import atomic_path
from transferkit.core.contracts import TextExamples


def default_cache_dir() -> str:
    return os.environ.get("TRANSFERKIT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "transferkit"))


def text_hashes(examples: TextExamples) -> list[bytes]:
    pairs = examples.text_pairs or [None] * len(examples)
    return [hashlib.sha1(f"{t}\x1f{p}".encode()).digest() for t, p in zip(examples.texts, pairs, strict=True)]


class EmbeddingCache:
    """Content-addressed feature cache.

    ``embedded`` counts texts actually sent through the encoder (in this process), and
    ``reused`` those served from the cache: a grid can assert each text was embedded once.
    """

    def __init__(self, root: str | None = None) -> None:
        self.root = os.path.join(root or default_cache_dir(), "embeddings")
        self.embedded = 0
        self.reused = 0
        self._memory: dict[str, dict[bytes, np.ndarray]] = {}

    def key(self, parts: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]

    def features(self, key_parts: dict[str, Any], examples: TextExamples,
                 encode: Callable[[TextExamples], np.ndarray]) -> np.ndarray:
        """(n, dim) features of ``examples``; only texts never seen under this key are encoded."""
        key = self.key(key_parts)
        known = self._load(key)
        hashes = text_hashes(examples)
        missing: dict[bytes, int] = {}
        for index, digest in enumerate(hashes):
            if digest not in known and digest not in missing:
                missing[digest] = index
        if missing:
            vectors = encode(examples.subset(list(missing.values())))
            self._append(key, key_parts, list(missing), vectors)
            known.update(zip(missing, vectors, strict=True))
            self.embedded += len(missing)
        self.reused += len(hashes) - len(missing)
        return np.stack([known[digest] for digest in hashes])

    def _load(self, key: str) -> dict[bytes, np.ndarray]:
        if key in self._memory:
            return self._memory[key]
        known: dict[bytes, np.ndarray] = {}
        directory = os.path.join(self.root, key)
        if os.path.isdir(directory):
            for name in sorted(os.listdir(directory)):
                if name.endswith(".safetensors"):
                    chunk = load_file(os.path.join(directory, name))
                    known.update(zip(map(bytes, chunk["hashes"]), chunk["vectors"], strict=True))
        self._memory[key] = known
        return known

    def _append(self, key: str, key_parts: dict[str, Any], hashes: list[bytes], vectors: np.ndarray) -> None:
        directory = os.path.join(self.root, key)
        os.makedirs(directory, exist_ok=True)
        info = os.path.join(directory, "key.json")
        if not os.path.exists(info):
            with open(info, "w", encoding="utf-8") as handle:
                json.dump(key_parts, handle, indent=2)
        arrays = {"hashes": np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 20),
                  "vectors": np.ascontiguousarray(vectors, dtype=np.float32)}
        with atomic_path(os.path.join(directory, f"chunk-{uuid.uuid4().hex}.safetensors")) as tmp:
            save_file(arrays, tmp)
