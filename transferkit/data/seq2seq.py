"""Read (document, summary) pairs and compute the lead-sentence baseline.

Conventions
-----------
* ``rows[i]`` is the 1-based line (or row) pair ``i`` came from, so messages can say
  ``train.jsonl line 7``; for line-aligned files it is the line number in both files.
* Empty (or whitespace-only) documents and summaries are errors naming the line, never
  silently dropped: a summarizer trained on an empty target learns to stop at once.
* Long targets are *not* handled here: the task truncates at tokenisation and counts.
* Line-aligned files are split on ``\\n`` only (a trailing ``\\r`` is dropped), never on the
  other Unicode line breaks, so line ``i`` of one file always pairs with line ``i`` of the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from transferkit.core.errors import UserError, closest
from transferkit.data._messages import show, show_list
from transferkit.data.readers import Table, check_file, decode_file, read_table

__all__ = ["Seq2SeqExamples", "lead_sentences", "read_pairs", "read_parallel", "split_sentences"]

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_CLOSERS = "\"'”’)]}»」』）】》"
# English: . ! ? (runs, e.g. "?!" or "...") and closing quotes/brackets, then whitespace.
_EN_END = re.compile(rf"([.!?]+[{re.escape(_CLOSERS)}]*)\s+")
# Chinese: 。！？ (also half-width !?, and the ellipsis) and closers; no whitespace needed.
_ZH_END = re.compile(rf"([。！？!?…]+[{re.escape(_CLOSERS)}]*)\s*")
# Periods after these words do not end a sentence ("Mr. Smith", "St. Andrews").
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "no", "gen", "col", "lt", "sgt", "rev", "gov", "sen", "rep",
    "inc", "co", "ltd",
})


@dataclass
class Seq2SeqExamples:
    """Validated (source, target) text pairs as aligned lists; ``targets`` is ``None`` for prediction."""

    sources: list[str]
    targets: list[str] | None = None
    rows: list[int] | None = None
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: Any) -> Seq2SeqExamples:
        """The pairs at ``indices`` (any iterable of ints), in that order."""
        indices = [int(i) for i in indices]

        def pick(values: list | None) -> list | None:
            return None if values is None else [values[i] for i in indices]

        return Seq2SeqExamples(
            sources=[self.sources[i] for i in indices], targets=pick(self.targets), rows=pick(self.rows), source=self.source
        )


def read_pairs(
    path: str, format: str = "auto", source_column: str = "document", target_column: str | None = "summary",
    columns: list[str] | None = None,
) -> Seq2SeqExamples:
    """Read pairs from a csv, tsv, jsonl file or Hugging Face dataset (see ``read_table``; ``columns``
    names the fields of a headerless csv/tsv).

    ``target_column=None`` reads documents only (for prediction).  A missing column, a
    missing/non-text value or an empty document or summary raises a one-line UserError
    naming the file and the first bad line.
    """
    table = read_table(path, format=format, columns=columns)
    columns = [source_column] if target_column is None else [source_column, target_column]
    for column in columns:
        if column not in table.columns:
            raise UserError(
                f"{table.source}: no column {show(column)}{closest(column, table.columns)}; "
                f"columns found: {show_list(table.columns)}; set source_column/target_column"
            )
    sources = _texts(table, source_column)
    targets = None if target_column is None else _texts(table, target_column)
    return Seq2SeqExamples(sources=sources, targets=targets, rows=list(table.rows), source=table.source)


def _texts(table: Table, column: str) -> list[str]:
    """The column's values, each a non-empty string (first bad line named, others counted)."""
    values = table.data[column]
    bad = [i for i, value in enumerate(values) if not isinstance(value, str) or not value.strip()]
    if bad:
        value = values[bad[0]]
        what = "is empty" if isinstance(value, str) or value is None else f"is not text ({show(value)})"
        more = f" ({len(bad) - 1} more such lines)" if len(bad) > 1 else ""
        raise UserError(f"{table.where(bad[0])}: {column} {what}{more}; every pair needs a non-empty {column}")
    return list(values)


def read_parallel(source_path: str, target_path: str) -> Seq2SeqExamples:
    """Read line-aligned files: line ``i`` of ``source_path`` pairs with line ``i`` of ``target_path``.

    The line counts must match and no line may be empty (one-line UserError naming the files,
    the counts or the first empty line).  ``source`` is ``"SOURCE_PATH + TARGET_PATH"``.
    """
    sources = read_lines(str(source_path))
    targets = read_lines(str(target_path))
    if len(sources) != len(targets):
        raise UserError(
            f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}; "
            "line i of one must pair with line i of the other: fix the files so the counts match"
        )
    return Seq2SeqExamples(
        sources=sources, targets=targets, rows=list(range(1, len(sources) + 1)), source=f"{source_path} + {target_path}"
    )


def read_lines(path: str) -> list[str]:
    """The file's lines (split on ``\\n``, ``\\r`` dropped, one trailing newline allowed), none empty."""
    check_file(path)
    text = decode_file(path)
    if text.endswith("\n"):
        text = text[:-1]
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines == [""]:
        raise UserError(f"{path}: file is empty; expected one text per line")
    empty = [number for number, line in enumerate(lines, start=1) if not line.strip()]
    if empty:
        more = f" ({len(empty) - 1} more empty lines)" if len(empty) > 1 else ""
        raise UserError(f"{path} line {empty[0]}: empty line{more}; every line pairs with the same line of the other file")
    return lines


def split_sentences(text: str, language: str = "auto") -> list[str]:
    """Split ``text`` into sentences, keeping their final punctuation.

    * ``en``: a run of ``.!?`` (plus closing quotes/brackets) followed by whitespace ends a
      sentence, unless the word before a ``.`` is a common abbreviation (``Mr.``) or a single
      letter (initials like ``J. K.``) or holds a period (``U.S.``); "3.5" never splits.
    * ``zh``: ``。！？`` (and ``!?…``) plus closing quotes end a sentence, whitespace or not.
    * Line breaks always end a sentence (XSum puts each sentence or paragraph on its own line).
    * ``auto``: ``zh`` when CJK characters are at least as many as Latin words, else ``en``.
    """
    language = _language(text, language)
    marked = _ZH_END.sub(r"\1\n", text) if language == "zh" else _EN_END.sub(_english_break, text)
    pieces = (piece.strip() for piece in marked.split("\n"))
    return [piece for piece in pieces if piece]


def _english_break(match: re.Match) -> str:
    """The replacement for one candidate English boundary: a newline, or the original text."""
    before = match.string[max(0, match.start() - 40) : match.start()].split()  # bounded: no quadratic scan
    word = before[-1].lstrip("\"'“‘([").lower() if before else ""
    abbreviation = word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or "." in word
    if match.group(1) == "." and abbreviation:
        return match.group(0)
    return match.group(1) + "\n"


def lead_sentences(text: str, n: int = 1, language: str = "auto") -> str:
    """The first ``n`` sentences of ``text`` (:func:`split_sentences`), the lead-n summary baseline.

    Joined with a space for English and with nothing for Chinese; the whole (stripped) text
    when it has ``n`` sentences or fewer.
    """
    if int(n) < 1:
        raise UserError(f"lead_sentences needs n >= 1, got {n}")
    language = _language(text, language)
    return ("" if language == "zh" else " ").join(split_sentences(text, language)[: int(n)])


def _language(text: str, language: str) -> str:
    """Resolve ``auto`` to ``zh`` or ``en`` (CJK characters vs Latin words)."""
    if language not in ("auto", "en", "zh"):
        raise UserError(f"unknown language {show(language)}; valid: auto, en, zh")
    if language != "auto":
        return language
    return "zh" if len(_CJK.findall(text)) >= max(1, len(_LATIN_WORD.findall(text))) else "en"
