"""Reading config YAML: a loader with YAML 1.2 booleans, and files whose mistakes are one-line errors."""

from __future__ import annotations

import functools
from typing import Any

from transferkit.core.errors import UserError

_BOOL_TAG = "tag:yaml.org,2002:bool"


@functools.cache
def config_loader() -> type:
    """A ``yaml.SafeLoader`` that reads booleans YAML 1.2 style: only true/false (True, TRUE, ...).

    PyYAML follows YAML 1.1, where yes/no/on/off are booleans too, so ``mixed_precision: no``
    became ``False`` and a string-typed option refused its documented value.  With this loader they
    stay strings; a bool option given ``yes`` gets the usual "expected true/false" error.  The
    spellings are the YAML 1.2 core schema's, a subset of what ``yaml.safe_dump`` quotes, so any
    string it writes reads back unchanged.
    """
    import re

    import yaml  # local: core stays importable without optional parsing at module import

    class ConfigLoader(yaml.SafeLoader):
        pass

    # the resolver table is a class attribute shared with SafeLoader: copy it, minus the YAML 1.1 booleans
    ConfigLoader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    ConfigLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return ConfigLoader


def load_yaml(text: Any) -> Any:
    """Parse YAML config text (a string or a file) with :func:`config_loader`."""
    import yaml

    return yaml.load(text, Loader=config_loader())  # a SafeLoader subclass: no arbitrary objects


def read_yaml_file(path: str, what: str) -> Any:
    """Parse a YAML file; a missing file or a syntax error is a one-line UserError (with the line)."""
    import os

    import yaml

    if not os.path.isfile(path):
        raise UserError(f"{what} not found: {path}")
    with open(path, encoding="utf-8") as handle:
        try:
            return load_yaml(handle)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise UserError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
