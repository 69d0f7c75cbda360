"""Read labelled tables from CSV, TSV, JSON Lines, Hugging Face datasets or Amazon ``.review`` files.

Every record keeps the 1-based line (or row) it came from, so later checks can
say exactly where a problem is: ``train.tsv line 7: ...``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferkit.core.errors import UserError, unknown_name
from transferkit.data._messages import at, one_line, show, show_list

FORMATS = ("auto", "csv", "tsv", "jsonl", "hf", "amazon_reviews")
REVIEW_EXTENSION = ".review"
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
              REVIEW_EXTENSION: "amazon_reviews"}
HF_PREFIX = "hf:"


@dataclass
class Table:
    """Column-oriented records; ``rows[i]`` is the 1-based source line/row of record ``i``."""

    columns: list[str]
    data: dict[str, list]
    rows: list[int]
    source: str
    unit: str = field(default="line")  # "line" for text files, "row" for datasets

    def __len__(self) -> int:
        return len(self.rows)

    def where(self, index: int) -> str:
        """``"train.tsv line 7"`` for record ``index`` (0-based)."""
        return at(self.source, self.unit, self.rows[index])


def read_table(path: str, format: str = "auto", columns: list[str] | None = None) -> Table:
    """Read ``path`` as csv, tsv, jsonl, a Hugging Face dataset (``hf``) or Amazon reviews (``amazon_reviews``).

    ``auto`` picks by extension; a directory holding ``.review`` files means Amazon reviews
    (:mod:`transferkit.data.amazon_reviews`); another directory or an ``hf:NAME[:CONFIG][@SPLIT]``
    spec means a Hugging Face dataset.  ``columns`` names the fields of a csv/tsv file that has
    no header line (every line is then a record).  Any problem with the file raises a
    one-line UserError.
    """
    path = str(path)
    if format not in FORMATS:
        raise UserError(f"{path}: {unknown_name('format', str(format), FORMATS[1:])}")
    if format == "auto":
        format = detect_format(path)
    if columns and format not in ("csv", "tsv"):
        raise UserError(f"{path}: data.columns names the fields of a headerless csv/tsv file, but this is {format}; "
                        "unset data.columns")
    if format == "hf":
        return _read_hf(path)
    if format == "amazon_reviews":
        from transferkit.data.amazon_reviews import read_reviews  # here: that module builds on this one's Table

        return read_reviews(path)
    check_file(path)
    text = decode_file(path)
    if format == "jsonl":
        return _read_jsonl(text, path)
    return _read_delimited(text, path, "," if format == "csv" else "\t", list(columns) if columns else None)


def detect_format(path: str) -> str:
    """The format ``auto`` resolves to for ``path`` (by prefix, directory or extension)."""
    if holds_reviews(path):
        return "amazon_reviews"
    if path.startswith(HF_PREFIX) or os.path.isdir(path) or os.path.isdir(_split_suffix(path)[0]):
        return "hf"
    extension = os.path.splitext(path)[1].lower()
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    if not os.path.exists(path):
        raise UserError(f"file not found: {path}")
    raise UserError(
        f"{path}: cannot tell the format from the extension {extension or '(none)'!r}; "
        "set data.format to csv, tsv, jsonl or hf"
    )


def holds_reviews(path: str) -> bool:
    """Whether ``path`` is a directory with ``.review`` files (an Amazon reviews domain, not a saved dataset)."""
    return os.path.isdir(path) and any(name.endswith(REVIEW_EXTENSION) for name in os.listdir(path))


def check_file(path: str) -> None:
    if not os.path.exists(path):
        raise UserError(f"file not found: {path}")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, not a file; pass a file or set data.format to hf")


def decode_file(path: str) -> str:
    """The file's text, strict UTF-8 (a leading BOM is dropped)."""
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(
            f"{path} line {line}: byte 0x{raw[exc.start]:02x} at byte offset {exc.start} (column {column}) "
            f"is not valid UTF-8; {_encoding_hint(raw, path)}"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _encoding_hint(raw: bytes, path: str) -> str:
    """What to do about a file that is not UTF-8: name the encoding it does decode as, if a common one."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return f"it is UTF-16 (byte-order mark): convert it, e.g. iconv -f UTF-16 -t UTF-8 {path}"
    try:
        raw.decode("gb18030")
    except UnicodeDecodeError:
        return "re-save the file as UTF-8"
    return f"it decodes as GBK/GB18030 (Chinese): convert it, e.g. iconv -f GB18030 -t UTF-8 {path}"


def _read_delimited(text: str, path: str, delimiter: str, columns: list[str] | None = None) -> Table:
    """CSV (quoted fields) or TSV (no quoting: SST-2 sentences contain quotes).

    Without ``columns`` the first record is the header; with them every record is data.
    """
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    records: list[list[str]] = []
    starts: list[int] = []
    ends: list[int] = []
    previous = 0
    try:
        for record in reader:
            if record and not (len(record) == 1 and not record[0].strip()):  # skip blank lines
                records.append(record)
                starts.append(previous + 1)
                ends.append(reader.line_num)
            previous = reader.line_num
    except csv.Error as exc:
        raise UserError(f"{path} line {reader.line_num}: cannot parse ({one_line(exc)}); fix the line") from None
    if not records:
        raise UserError(f"{path}: file is empty; expected a header line with column names, then one record per line")
    skip = 0 if columns else 1  # records before the data: the header line, unless data.columns names the fields
    header, body = columns or records[0], records[skip:]
    if not columns:
        _check_header(header, path, starts[0])
    elif len(set(columns)) < len(columns):
        raise UserError(f"{path}: data.columns names a column twice ({', '.join(columns)}); give distinct names")
    elif records[0] == columns:
        raise UserError(f"{path} line {starts[0]}: the file has a header line ({', '.join(columns)}); "
                        "unset data.columns (it is for files without one)")
    if not body:
        raise UserError(f"{path}: no records after the header line; add at least one record")
    _check_widths(body, header, path, starts[skip:], ends[skip:], delimiter)
    columns_data = list(zip(*body, strict=True))
    return Table(
        columns=list(header),
        data={name: list(values) for name, values in zip(header, columns_data, strict=True)},
        rows=starts[skip:],
        source=path,
    )


def _check_header(header: list[str], path: str, line: int) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise UserError(f"{path} line {line}: duplicate column name {show(name)} in the header; rename one of them")
        seen.add(name)


def _check_widths(
    body: list[list[str]], header: list[str], path: str, starts: list[int], ends: list[int], delimiter: str
) -> None:
    widths = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
    bad = np.flatnonzero(widths != len(header))
    if bad.size == 0:
        return
    first = int(bad[0])
    hint = "quote fields that contain commas" if delimiter == "," else "a text field may contain a tab"
    if ends[first] > starts[first]:
        hint = f"the record runs on to line {ends[first]}: an unclosed quote?"
    more = f" ({bad.size - 1} more such lines)" if bad.size > 1 else ""
    raise UserError(
        f"{path} line {starts[first]}: expected {len(header)} fields ({', '.join(header)}), "
        f"found {int(widths[first])}{more}; {hint}"
    )


def json_lines(text: str, path: str, hint: str = "JSON Lines needs one complete object per line"
               ) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed value) per non-blank line; invalid JSON is a one-line error naming the line."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} line {number}: invalid JSON ({exc.msg} at column {exc.colno}); {hint}") from None
        yield number, value


def _read_jsonl(text: str, path: str) -> Table:
    """One JSON object per line; blank lines are skipped; missing keys become None."""
    records: list[dict] = []
    rows: list[int] = []
    for number, record in json_lines(text, path):
        if not isinstance(record, dict):
            raise UserError(
                f"{path} line {number}: expected a JSON object like {{\"text\": ..., \"label\": ...}}, "
                f"found a {type(record).__name__}; write one object per line"
            )
        records.append(record)
        rows.append(number)
    if not records:
        raise UserError(f"{path}: file is empty; expected one JSON object per line")
    columns = list(dict.fromkeys(key for record in records for key in record))
    data = {name: [record.get(name) for record in records] for name in columns}
    return Table(columns=columns, data=data, rows=rows, source=path)


def _split_suffix(path: str) -> tuple[str, str | None]:
    """``"dir@validation"`` -> ``("dir", "validation")`` unless ``path`` itself exists."""
    if "@" not in path or os.path.exists(path):
        return path, None
    base, split = path.rsplit("@", 1)
    return base, (split or None)


def _read_hf(path: str) -> Table:
    dataset = _load_hub(path) if path.startswith(HF_PREFIX) else _load_disk(path)
    if dataset.num_rows == 0:
        raise UserError(f"{path}: dataset has no rows; pick a non-empty split")
    columns = list(dataset.column_names)
    return Table(
        columns=columns,
        data=dataset.to_dict(),
        rows=list(range(1, dataset.num_rows + 1)),
        source=path,
        unit="row",
    )


def _load_disk(path: str):  # -> datasets.Dataset
    base, split = _split_suffix(path)
    if not os.path.exists(base):
        raise UserError(f"file not found: {base}")
    import datasets  # lazy: optional dependency

    try:
        loaded = datasets.load_from_disk(base)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(
            f"{base}: not a dataset saved with datasets' save_to_disk ({one_line(exc, 120)}); "
            "pass a csv/tsv/jsonl file or a save_to_disk directory"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        return _pick_split(loaded, split or "train", base)
    if split is not None:
        raise UserError(f"{path}: {base} holds a single dataset, not splits; drop the '@{split}' suffix")
    return loaded


def _pick_split(splits, split: str, source: str):  # -> datasets.Dataset
    if split not in splits:
        names = list(splits)
        raise UserError(f"{source}: no split {show(split)}; splits found: {show_list(names)}; pick one with {source}@SPLIT")
    return splits[split]


def parse_hub_spec(spec: str) -> tuple[str, str | None, str | None]:
    """``"hf:glue:sst2@validation"`` -> ``("glue", "sst2", "validation")``."""
    rest = spec[len(HF_PREFIX) :]
    rest, _, split = rest.partition("@")
    name, _, config = rest.partition(":")
    if not name:
        raise UserError(f"{spec}: missing dataset name; write hf:NAME[:CONFIG][@SPLIT], e.g. hf:glue:sst2@train")
    return name, (config or None), (split or None)


def _load_hub(spec: str):  # -> datasets.Dataset
    name, config, split = parse_hub_spec(spec)
    import datasets  # lazy: optional dependency

    try:
        return datasets.load_dataset(name, config, split=split or "train")
    except Exception as exc:  # noqa: BLE001 - offline/hub failures come in many types
        raise UserError(
            f"{spec}: could not load from the Hugging Face hub (unreachable or unknown dataset: "
            f"{type(exc).__name__}: {one_line(exc, 120)}); download it elsewhere, save_to_disk, and pass that directory"
        ) from None
