"""Turn a :class:`Table` into validated :class:`TextExamples` (texts + class ids)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from transferkit.core.contracts import TextExamples
from transferkit.core.errors import UserError, closest
from transferkit.data._messages import show, show_list
from transferkit.data.labels import LabelMap
from transferkit.data.readers import Table

logger = logging.getLogger("transferkit")


def to_examples(
    table: Table,
    text_column: str,
    label_column: str,
    text_pair_column: str | None = None,
    label_map: LabelMap | None = None,
    require_labels: bool = True,
    drop_empty: bool = False,
) -> tuple[TextExamples, LabelMap | None]:
    """Validate texts and labels of ``table``.

    Without ``label_map`` the labels found define it (training data); with one, labels are
    encoded against it (eval/test files).  With ``require_labels=False`` a missing label
    column gives ``labels=None`` (prediction input).  An empty text is an error naming its
    line, unless ``drop_empty``: such rows are then dropped with one warning.
    """
    _require_column(table, text_column, "data.text_column")
    if text_pair_column is not None:
        _require_column(table, text_pair_column, "data.text_pair_column")
    if drop_empty:
        table = _drop_empty(table, [text_column] if text_pair_column is None else [text_column, text_pair_column])
    texts = _clean_texts(table, text_column)
    pairs = None
    if text_pair_column is not None:
        pairs = _clean_texts(table, text_pair_column)
    labels = None
    if require_labels or label_column in table.data:
        _require_column(table, label_column, "data.label_column")
        values = table.data[label_column]
        if label_map is None:
            label_map = LabelMap.from_values(values, table.source, table.rows, table.unit)
        labels = label_map.encode(values, table.source, table.rows, table.unit)
    examples = TextExamples(texts=texts, labels=labels, text_pairs=pairs, rows=list(table.rows), source=table.source)
    return examples, label_map


def _require_column(table: Table, name: str, field: str) -> None:
    if name not in table.data:
        headerless = os.path.splitext(table.source)[1].lower() in (".csv", ".tsv", ".tab", ".txt")
        hint = " (or, if the first line is a record, name the fields with data.columns)" if headerless else ""
        raise UserError(
            f"{table.source}: no column {show(name)}{closest(name, table.columns)}; "
            f"columns found: {show_list(table.columns)}; set {field}{hint}"
        )


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _drop_empty(table: Table, columns: list[str]) -> Table:
    """``table`` without the rows whose text (in any of ``columns``) is empty; one warning counts them."""
    empty = np.zeros(len(table), dtype=bool)
    for column in columns:
        empty |= np.fromiter(map(_is_missing, table.data[column]), dtype=bool, count=len(table))
    if not empty.any():
        return table
    drop = np.flatnonzero(empty)
    logger.warning("%s: dropped %d row(s) with empty text (first at %s %d; data.drop_empty is set)",
                   table.source, drop.size, table.unit, table.rows[int(drop[0])])
    keep = np.flatnonzero(~empty)
    return Table(columns=table.columns, data={name: [values[i] for i in keep] for name, values in table.data.items()},
                 rows=[table.rows[i] for i in keep], source=table.source, unit=table.unit)


def _clean_texts(table: Table, column: str) -> list[str]:
    """Stripped texts; an empty/None/NaN text is a UserError naming its row."""
    values: Sequence[Any] = table.data[column]
    missing = np.fromiter(map(_is_missing, values), dtype=bool, count=len(values))
    bad = np.flatnonzero(missing)
    if bad.size:
        first = int(bad[0])
        more = f" (and {bad.size - 1} more rows)" if bad.size > 1 else ""
        raise UserError(
            f"{table.where(first)}: empty text in column {show(column)}{more}; fill it in, remove the row "
            "or set data.drop_empty=true"
        )
    non_text = [i for i, value in enumerate(values) if not isinstance(value, (str, int, float))]
    if non_text:
        value = values[non_text[0]]
        raise UserError(
            f"{table.where(non_text[0])}: text in column {show(column)} is a {type(value).__name__}; "
            "texts must be strings"
        )
    return [str(value).strip() for value in values]


def check_trainable(examples: TextExamples, label_map: LabelMap) -> None:
    """Training needs labels and at least two distinct classes."""
    if examples.labels is None:
        raise UserError(f"{examples.source}: training data has no labels; set data.label_column")
    if len(examples) == 0:
        raise UserError(f"{examples.source}: training data has no examples")
    present = np.unique(np.asarray(examples.labels, dtype=np.int64))
    if present.size < 2:
        name = label_map.names[int(present[0])]
        raise UserError(
            f"{examples.source}: training data has a single class {show(name)}; need at least 2 "
            "(check data.label_column or the label budget)"
        )
