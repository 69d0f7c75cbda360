"""Source models: the catalog, safe loading (safetensors only) and layer groups."""

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

__all__ = [
    "CatalogEntry",
    "LayerGroup",
    "LoadedModel",
    "ResolvedModel",
    "available",
    "catalog_entries",
    "catalog_names",
    "check_weights",
    "fingerprint_dir",
    "get_entry",
    "layer_groups",
    "load_backbone",
    "load_config",
    "num_layers",
    "resolve",
    "save_backbone",
]
