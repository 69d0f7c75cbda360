"""Catalog models derived from another catalog model: random weights, and the first k layers.

``random-bert`` is MiniLM-L6's architecture, config and tokenizer with the standard BERT initialisation
(``AutoModel.from_config`` after ``torch.manual_seed(0)``): the negative control for source selection, a
model with no pretraining at all. Unlike ``load_backbone(..., random_init=True)``, whose weights follow
the caller's seed, it is written once into the cache, so a grid compares every source against the same
random weights (the same on every machine for a given torch and transformers).

``NAME@k`` keeps the embeddings, layers ``0 .. k-1`` and the pooler of the catalog transformer ``NAME``
(``num_hidden_layers = k``): its last hidden state is the base model's ``hidden_states[k]``, so a
selection experiment can ask how much depth a task needs without training anything new.

Both are written through :func:`transferkit.models._materialise.materialise` as ordinary Hugging Face
directories, so every strategy fine-tunes, saves and reloads them unchanged.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from transferkit.core.errors import UserError
from transferkit.models._materialise import (
    MANIFEST,
    cache_key,
    cache_root,
    check_state_dict,
    manifest_ok,
    materialise,
    write_json,
)
from transferkit.models.catalog import CatalogEntry, available, get_entry

RANDOM_NAME = "random-bert"
RANDOM_BASE = "minilm-l6"
RANDOM_SEED = 0
CONVERSION_VERSION = 1
_LAYER = re.compile(r"(?:^|\.)layer\.(\d+)\.")
_KIND_WORDS = {"vectors": "static word-vector model", "text_encoder": "frozen text encoder, not a transformer"}


def layer_params(hidden: int, intermediate: int) -> int:
    """Parameters of one BERT/MPNet encoder layer.

    Q, K, V and output projections ``4h² + 4h``, two LayerNorms ``4h``, the feed-forward block
    ``2·h·ff + ff + h``; in all ``4h² + 2·h·ff + 9h + ff``.
    """
    return 4 * hidden * hidden + 2 * hidden * intermediate + 9 * hidden + intermediate


def truncated_entry(base: CatalogEntry, depth: str) -> CatalogEntry:
    """The catalog entry ``{base.name}@{depth}``: the first ``depth`` layers of ``base``.

    ``params`` is the base's count less ``layers - k`` layers of :func:`layer_params` with an
    intermediate size of 4 x hidden: exact for every catalog transformer (BERT and MPNet, all 4 x).

    Raises:
        UserError: ``base`` is not a transformer, or ``depth`` is not a whole number from 1 to
            ``base.layers - 1``.
    """
    name = f"{base.name}@{depth}"
    if base.kind != "transformer":
        raise UserError(f"'{name}': only transformers can be cut to their first layers; {base.name} is a "
                        f"{_KIND_WORDS.get(base.kind, base.kind)}")
    if not depth.isdigit() or not 1 <= int(depth) < base.layers:
        raise UserError(f"'{name}': {base.name} has {base.layers} layers: keep the first k with "
                        f"{base.name}@k, k from 1 to {base.layers - 1}")
    k = int(depth)
    removed = (base.layers - k) * layer_params(base.hidden_size, 4 * base.hidden_size)
    return CatalogEntry(
        name=f"{base.name}@{k}",
        description=f"the first {k} of {base.name}'s {base.layers} layers (embeddings + layers 0-{k - 1} + pooler), "
        "written once into the cache",
        architecture=base.architecture,
        layers=k,
        hidden_size=base.hidden_size,
        params=base.params - removed,
        resolve=lambda: resolve_truncated(base.name, k),
        installed=lambda: available(base),
    )


def _layer_index(parameter: str) -> int | None:
    match = _LAYER.search(parameter)
    return int(match.group(1)) if match else None


def _write(work: Path, state: dict[str, Any], config: Any, tokenizer: Any, facts: dict[str, object]) -> None:
    """An ordinary Hugging Face directory: safetensors weights, config.json, tokenizer files, manifest."""
    from safetensors.torch import save_file

    check_state_dict(config, state, str(facts["name"]))
    work.mkdir(parents=True)
    tensors = {key: value.detach().contiguous() for key, value in state.items()}
    save_file(tensors, str(work / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(str(work))
    tokenizer.save_pretrained(str(work))
    write_json(work / MANIFEST, facts)


def _build_random(base_dir: str, work: Path, facts: dict[str, object]) -> None:
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    start = time.perf_counter()
    config = AutoConfig.from_pretrained(base_dir)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(RANDOM_SEED)
        model = AutoModel.from_config(config)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    _write(work, model.state_dict(), config, tokenizer, {**facts, "seconds": round(time.perf_counter() - start, 2)})


def resolve_random() -> str:
    """The ``random-bert`` directory, written on first use from MiniLM-L6's config and tokenizer."""
    base = get_entry(RANDOM_BASE)
    assert base is not None
    base_dir = Path(base.resolve())  # one-line UserError naming the package when it is missing
    config_bytes = (base_dir / "config.json").read_bytes()
    key = cache_key(config_bytes.decode("utf-8"), RANDOM_SEED, CONVERSION_VERSION)
    facts: dict[str, object] = {"name": RANDOM_NAME, "base": RANDOM_BASE, "seed": RANDOM_SEED, "key": key,
                                "conversion_version": CONVERSION_VERSION}
    final = cache_root() / f"{RANDOM_NAME}-{key}"
    built = materialise(final, lambda work: _build_random(str(base_dir), work, facts),
                        lambda directory: manifest_ok(directory, facts))
    return str(built)


def _build_truncated(base_name: str, layers: int, work: Path, facts: dict[str, object]) -> None:
    import copy

    from transferkit.models.loading import load_backbone

    start = time.perf_counter()
    loaded = load_backbone(base_name)  # safetensors only, like any other load
    config = copy.deepcopy(loaded.backbone.config)
    config.num_hidden_layers = layers
    state = {key: value for key, value in loaded.backbone.state_dict().items()
             if (index := _layer_index(key)) is None or index < layers}
    _write(work, state, config, loaded.tokenizer, {**facts, "seconds": round(time.perf_counter() - start, 2)})


def resolve_truncated(base_name: str, layers: int) -> str:
    """The ``{base_name}@{layers}`` directory, written on first use from the base model.

    The cache directory is named after the base's fingerprint, so a re-converted or reinstalled base
    gets a fresh truncation instead of a stale one.
    """
    from transferkit.models.loading import fingerprint_dir
    from transferkit.models.loading import resolve as resolve_reference

    resolved = resolve_reference(base_name)  # converts the base once if it needs converting
    base_key = fingerprint_dir(resolved.path_or_id) if resolved.is_local else resolved.path_or_id
    name = f"{base_name}@{layers}"
    facts: dict[str, object] = {"name": name, "base": base_name, "base_fingerprint": base_key, "layers": layers,
                                "conversion_version": CONVERSION_VERSION}
    final = cache_root() / f"{name}-{cache_key(base_key, layers, CONVERSION_VERSION)}"
    built = materialise(final, lambda work: _build_truncated(base_name, layers, work, facts),
                        lambda directory: manifest_ok(directory, facts))
    return str(built)
