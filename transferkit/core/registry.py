"""A tiny name -> class registry (strategies, tasks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from transferkit.core.errors import unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a registry key (``cls.name``) to a class.

    >>> strategies = Registry("strategy")
    >>> @strategies.register
    ... class Finetune: name = "finetune"
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        name = cls.name  # type: ignore[attr-defined]
        if name in self._items and self._items[name] is not cls:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self._items[name] = cls
        return cls

    def get(self, name: str) -> type[T]:
        if name not in self._items:
            raise unknown_name(self.kind, name, self._items)
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def filter(self, predicate: Callable[[type[T]], bool]) -> list[str]:
        return [name for name, cls in sorted(self._items.items()) if predicate(cls)]
