"""Split a backbone's parameters into ordered layer groups (bottom to top).

Strategies such as gradual unfreezing, discriminative learning rates or re-initialising
the top layers work on these groups.  Groups are ``embeddings``, ``layer.0`` ...
``layer.{N-1}``, then top modules (``pooler`` ...) and ``other``.  Every parameter of the
backbone belongs to exactly one group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

_LAYER_RE = re.compile(r"(?:^|\.)(layer|layers|h|block|blocks)\.(\d+)\.")
_Named = list[tuple[str, nn.Parameter]]


@dataclass
class LayerGroup:
    """A named, ordered slice of a backbone's parameters.

    Attributes:
        name: ``embeddings``, ``layer.<i>``, a top module name (e.g. ``pooler``) or ``other``.
        params: ``(name, parameter)`` pairs, names relative to the backbone.
        modules: the modules that own the group when known (empty for ``other``).
    """

    name: str
    params: _Named
    modules: list[nn.Module] = field(default_factory=list)

    def parameters(self) -> list[nn.Parameter]:
        """The group's parameters."""
        return [param for _, param in self.params]

    def named_parameters(self) -> _Named:
        """The group's ``(name, parameter)`` pairs, names relative to the backbone."""
        return list(self.params)

    @property
    def is_layer(self) -> bool:
        """True for the transformer layers ``layer.<i>``."""
        return self.name.startswith("layer.")

    def num_params(self) -> int:
        """Number of scalar parameters in the group."""
        return sum(param.numel() for param in self.parameters())


def _is_bert_like(backbone: nn.Module) -> bool:
    encoder = getattr(backbone, "encoder", None)
    return isinstance(getattr(backbone, "embeddings", None), nn.Module) and isinstance(
        getattr(encoder, "layer", None), nn.ModuleList
    )


def _assemble(backbone: nn.Module, plan: list[tuple[str, list[nn.Module]]]) -> list[LayerGroup]:
    """Give each parameter to the first planned group whose modules own it; the rest go to ``other``."""
    owner: dict[int, str] = {}
    for group_name, modules in plan:
        for module in modules:
            for param in module.parameters():
                owner.setdefault(id(param), group_name)
    buckets: dict[str, _Named] = {group_name: [] for group_name, _ in plan}
    leftover: _Named = []
    for name, param in backbone.named_parameters():
        group_name = owner.get(id(param))
        (buckets[group_name] if group_name is not None else leftover).append((name, param))
    groups = [
        LayerGroup(group_name, buckets[group_name], list(modules))
        for group_name, modules in plan
        if buckets[group_name] or group_name.startswith("layer.")
    ]
    if leftover:
        groups.append(LayerGroup("other", leftover, []))
    return groups


def _structural_groups(backbone: nn.Module) -> list[LayerGroup]:
    """BERT family: ``.embeddings``, ``.encoder.layer[i]``, then the other top-level children."""
    plan: list[tuple[str, list[nn.Module]]] = [("embeddings", [backbone.embeddings])]
    plan += [(f"layer.{i}", [layer]) for i, layer in enumerate(backbone.encoder.layer)]
    for name, child in backbone.named_children():
        if name not in ("embeddings", "encoder"):
            plan.append((name, [child]))
    return _assemble(backbone, plan)


def _submodule(backbone: nn.Module, path: str) -> nn.Module | None:
    try:
        return backbone.get_submodule(path)
    except AttributeError:
        return None


def _owner_modules(backbone: nn.Module, names: list[str]) -> list[nn.Module]:
    modules: list[nn.Module] = []
    for name in names:
        module = _submodule(backbone, name.rpartition(".")[0]) if "." in name else None
        if module is not None and all(module is not seen for seen in modules):
            modules.append(module)
    return modules


def _is_embedding(backbone: nn.Module, name: str) -> bool:
    if "embed" in name.lower():
        return True
    owner = _submodule(backbone, name.rpartition(".")[0]) if "." in name else None
    return isinstance(owner, nn.Embedding)


def _generic_groups(backbone: nn.Module) -> list[LayerGroup]:
    """Fallback by parameter name.

    ``(layer|layers|h|block|blocks).<i>.`` gives the layers (numbered in order of appearance,
    so an encoder's blocks come before a decoder's); names containing ``embed`` or owned by an
    ``nn.Embedding`` give ``embeddings``; the rest is ``other`` (top).
    """
    layers: dict[tuple[str, int], _Named] = {}
    prefixes: dict[tuple[str, int], str] = {}
    containers: list[str] = []
    embeddings: _Named = []
    other: _Named = []
    for name, param in backbone.named_parameters():
        match = _LAYER_RE.search(name)
        if match:
            container = name[: match.start(1)] + match.group(1)
            key = (container, int(match.group(2)))
            if container not in containers:
                containers.append(container)
            layers.setdefault(key, []).append((name, param))
            prefixes[key] = name[: match.end() - 1]
        elif _is_embedding(backbone, name):
            embeddings.append((name, param))
        else:
            other.append((name, param))
    groups: list[LayerGroup] = []
    if embeddings:
        names = [name for name, _ in embeddings]
        groups.append(LayerGroup("embeddings", embeddings, _owner_modules(backbone, names)))
    ordered = sorted(layers, key=lambda key: (containers.index(key[0]), key[1]))
    for index, key in enumerate(ordered):
        module = _submodule(backbone, prefixes[key])
        groups.append(LayerGroup(f"layer.{index}", layers[key], [module] if module is not None else []))
    if other:
        groups.append(LayerGroup("other", other, []))
    return groups


def layer_groups(backbone: nn.Module) -> list[LayerGroup]:
    """Ordered layer groups, bottom to top: ``embeddings``, ``layer.0`` ... ``layer.{N-1}``, then top groups.

    BERT-family models (``.embeddings`` + ``.encoder.layer``) are split structurally and
    their remaining top-level modules (e.g. ``pooler``) follow the layers; any other model
    is split by parameter name.  Each backbone parameter appears in exactly one group.
    """
    if _is_bert_like(backbone):
        return _structural_groups(backbone)
    return _generic_groups(backbone)


def num_layers(backbone: nn.Module) -> int:
    """Number of transformer layers (``layer.<i>`` groups) in the backbone."""
    return sum(1 for group in layer_groups(backbone) if group.is_layer)


def spaced_layers(total: int, keep: int) -> list[int]:
    """``keep`` layer indices spread evenly over ``total``, always starting at the bottom layer:
    every other layer for ``keep = total / 2`` (DistilBERT's initialisation, Sanh et al. 2019)."""
    if not 1 <= keep <= total:
        raise ValueError(f"cannot keep {keep} of {total} layers")
    return [(index * total) // keep for index in range(keep)]


def truncate_layers(backbone: nn.Module, keep: list[int]) -> nn.Module:
    """Keep only the transformer layers ``keep`` (in order) of a BERT-family backbone, in place.

    The embeddings and every other module are kept; ``config.num_hidden_layers`` is updated so the
    saved model reloads with the same depth.  Raises ``ValueError`` for other architectures.
    """
    if not _is_bert_like(backbone):
        raise ValueError(f"{type(backbone).__name__} has no encoder.layer list to truncate")
    layers = backbone.encoder.layer
    if not keep or any(not 0 <= index < len(layers) for index in keep) or len(set(keep)) != len(keep):
        raise ValueError(f"layers {keep} are not distinct indices of the {len(layers)} layers")
    backbone.encoder.layer = nn.ModuleList([layers[index] for index in keep])
    backbone.config.num_hidden_layers = len(keep)
    return backbone
