"""Label names <-> class ids, with the same normalisation for every file.

``1``, ``1.0`` and ``"1"`` all mean the label ``"1"``; a map saved next to a model
lets eval, test and prediction files be encoded exactly like the training data.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferkit.core.atomic import write_json_atomic
from transferkit.core.errors import UserError
from transferkit.data._messages import at, one_line, show, show_list

_INT_LIKE = re.compile(r"[+-]?\d+(?:\.0*)?")


def normalize_label(value: Any) -> str | None:
    """The canonical string for one label value, or None when it is missing (None/NaN/empty)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        return str(int(text.split(".")[0])) if _INT_LIKE.fullmatch(text) else text
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        return str(int(number)) if number.is_integer() else str(number)
    raise TypeError(type(value).__name__)


def normalize_labels(values: Sequence[Any], source: str = "<memory>", rows: Sequence[int] | None = None,
                     unit: str = "row") -> list[str]:
    """Normalise every value; a missing or non-scalar label is a UserError naming its row."""
    cache: dict[tuple[type, Any], str | None] = {}
    result: list[str] = []
    for index, value in enumerate(values):
        key = (type(value), value) if isinstance(value, (str, int, float)) else None
        try:
            label = cache[key] if key in cache else normalize_label(value)
        except TypeError:
            raise UserError(
                f"{at(source, unit, _row(rows, index))}: label {show(value)} is a {type(value).__name__}; "
                "labels must be strings or integers"
            ) from None
        if label is None:
            raise UserError(f"{at(source, unit, _row(rows, index))}: missing label; fill it in or remove the row")
        if key is not None:
            cache[key] = label
        result.append(label)
    return result


def _row(rows: Sequence[int] | None, index: int) -> int:
    return rows[index] if rows is not None else index + 1


def _sort_names(names: set[str]) -> list[str]:
    if all(re.fullmatch(r"[+-]?\d+", name) for name in names):
        return sorted(names, key=int)
    return sorted(names)


@dataclass
class LabelMap:
    """Class names; the position of a name is its class id."""

    names: list[str]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.names = [str(name) for name in self.names]
        if len(set(self.names)) != len(self.names):
            raise UserError(f"label map has duplicate labels: {show_list(self.names)}; each label must appear once")
        self._index = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_values(cls, values: Sequence[Any], source: str = "<memory>", rows: Sequence[int] | None = None,
                    unit: str = "row") -> LabelMap:
        """The sorted unique labels of ``values`` (numerically when all are int-like)."""
        labels = normalize_labels(values, source, rows, unit)
        if not labels:
            raise UserError(f"{source}: no labels found; the training data needs labelled rows")
        return cls(_sort_names(set(labels)))

    def encode(self, values: Sequence[Any], source: str = "<memory>", rows: Sequence[int] | None = None,
               unit: str = "row") -> list[int]:
        """Class ids for ``values``; labels the map does not know raise a UserError."""
        labels = normalize_labels(values, source, rows, unit)
        ids = np.fromiter((self._index.get(label, -1) for label in labels), dtype=np.int64, count=len(labels))
        unknown = np.flatnonzero(ids < 0)
        if unknown.size:
            first = int(unknown[0])
            unseen = list(dict.fromkeys(labels[i] for i in unknown.tolist()))
            raise UserError(
                f"{at(source, unit, _row(rows, first))}: labels that training never saw: {show_list(unseen)} "
                f"({unknown.size} rows); training labels: {show_list(self.names)}; fix or remove those rows"
            )
        return ids.tolist()

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Label names for class ids."""
        return [self.names[int(i)] for i in ids]

    def save(self, path: str) -> None:
        """Write ``{"labels": [...]}`` atomically (temporary file + rename)."""
        write_json_atomic(path, {"labels": self.names})

    @classmethod
    def load(cls, path: str) -> LabelMap:
        """Read a map written by :meth:`save`."""
        if not os.path.exists(path):
            raise UserError(f"file not found: {path}")
        try:
            with open(path, encoding="utf-8") as handle:
                raw = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not a valid label file ({one_line(exc, 120)}); expected {{\"labels\": [...]}}") from None
        labels = raw.get("labels") if isinstance(raw, dict) else None
        if not isinstance(labels, list) or not all(isinstance(x, (str, int)) for x in labels):
            raise UserError(f"{path}: field 'labels' must be a list of label names, e.g. {{\"labels\": [\"neg\", \"pos\"]}}")
        return cls([normalize_label(x) or str(x) for x in labels])
