"""Small helpers that keep every data error message on one line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def one_line(text: Any, limit: int = 200) -> str:
    """``str(text)`` with line breaks collapsed and long text shortened."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def show(value: Any, limit: int = 60) -> str:
    """A quoted, single-line, length-limited rendering of one value."""
    if isinstance(value, str) and len(value) > limit:
        value = value[: limit - 3] + "..."
    return repr(value)  # repr escapes line breaks


def show_list(values: Iterable[Any], limit: int = 10) -> str:
    """``'a', 'b', 'c'`` for at most ``limit`` values, then ``... (N more)``."""
    items = list(values)
    shown = ", ".join(show(v, 40) for v in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def at(source: str, unit: str, row: int | None) -> str:
    """``"train.tsv line 7"`` (or just the source when the row is unknown)."""
    return source if row is None else f"{source} {unit} {row}"
