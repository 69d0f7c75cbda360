"""Source models: the catalog, safe loading (safetensors only), layer groups, static word vectors and frozen
text encoders."""

from transferkit.models.catalog import CatalogEntry, available, catalog_entries, catalog_names, get_entry
from transferkit.models.layers import LayerGroup, layer_groups, num_layers
from transferkit.models.loading import (
    LoadedModel,
    ResolvedModel,
    check_weights,
    fingerprint_dir,
    load_backbone,
    load_config,
    resolve,
    save_backbone,
)
from transferkit.models.text_encoders import TextEncoderBackbone, is_text_encoder, load_text_encoder, text_encoder
from transferkit.models.vectors import StaticVectors, model_kind, read_vectors
from transferkit.models.word_vectors import (  # importing registers the model with AutoConfig / AutoModel
    WordVectorConfig,
    WordVectorModel,
    build_tokenizer,
    coverage,
    embedding_matrix,
    vocabulary,
)

__all__ = [
    "CatalogEntry",
    "LayerGroup",
    "LoadedModel",
    "ResolvedModel",
    "StaticVectors",
    "TextEncoderBackbone",
    "WordVectorConfig",
    "WordVectorModel",
    "available",
    "build_tokenizer",
    "catalog_entries",
    "catalog_names",
    "check_weights",
    "coverage",
    "embedding_matrix",
    "fingerprint_dir",
    "get_entry",
    "is_text_encoder",
    "layer_groups",
    "load_backbone",
    "load_config",
    "load_text_encoder",
    "model_kind",
    "num_layers",
    "read_vectors",
    "resolve",
    "save_backbone",
    "text_encoder",
    "vocabulary",
]
