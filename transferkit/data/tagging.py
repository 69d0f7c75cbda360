"""Read token-tagged sentences (NER) and convert between BIO tag schemes.

Formats (``read_tagged``):

* ``conll``: one token per line, columns split on tabs if the first token line has one (so
  a token may be a space or U+3000) else on whitespace; blank and ``-DOCSTART-`` lines end
  a sentence.  ``chinese_bio`` (a character and its tag per line: Weibo NER) is an alias.
* ``msra``: the ERNIE MSRA-NER tsv: header ``text_a<TAB>label``, then one sentence per
  line, characters and tags each joined by ``\\x02``.
* ``jsonl``: one ``{"tokens": [...], "tags": [...]}`` object per line.

Tag conventions: a tag is ``O`` or ``P-TYPE`` with prefix ``P`` in ``B I E S``.  In IOB2
an entity is ``B-X (I-X)*``; IOB1 starts an entity with ``I-X`` and uses ``B-X`` only to
split adjacent entities of one type; BIOES marks the last token ``E-X`` and one-token
entities ``S-X``.  Everything read is converted to IOB2.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from itertools import chain
from typing import Any

from transferkit.core.errors import UserError, unknown_name
from transferkit.data._messages import at, show
from transferkit.data.readers import check_file, decode_file, json_lines

__all__ = [
    "SCHEMES", "TAGGED_FORMATS", "TaggedSentences", "char_spans", "detect_scheme", "entities",
    "entities_with_offsets", "from_bioes", "read_tagged", "repair_iob2", "to_bioes", "to_iob2",
]

TAGGED_FORMATS = ("auto", "conll", "chinese_bio", "msra", "jsonl")
SCHEMES = ("auto", "iob1", "iob2", "bio", "bioes", "iobes")
_ALIASES = {"bio": "iob2", "iobes": "bioes", "chinese_bio": "conll"}
_LAST = {"B": "S", "I": "E"}  # BIOES prefix of an entity's last token, by its IOB2 prefix
DOCSTART = "-DOCSTART-"
MSRA_SEPARATOR = "\x02"
_TAG = re.compile(r"O|[BIES]-\S+")
logger = logging.getLogger("transferkit")


@dataclass
class TaggedSentences:
    """Aligned token and tag lists, one entry per sentence.

    ``rows[i]`` is the 1-based source line of sentence ``i``'s first token; ``tags`` is
    ``None`` for unlabelled input; ``repaired`` counts the tags changed by
    :func:`repair_iob2` when ``source`` was read (subsets keep the source's count).
    """

    tokens: list[list[str]]
    tags: list[list[str]] | None = None
    rows: list[int] | None = None
    source: str = "<memory>"
    repaired: int = 0

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, indices: Any) -> TaggedSentences:
        """The sentences at ``indices`` (any iterable of ints), in that order."""
        def pick(values: list | None) -> list | None:
            return None if values is None else [values[i] for i in indices]

        return TaggedSentences([self.tokens[i] for i in indices], pick(self.tags), pick(self.rows), self.source,
                               self.repaired)

    def tag_set(self) -> list[str]:
        """Sorted distinct tags with ``"O"`` first (``"O"`` is always included)."""
        return ["O", *sorted(set(chain.from_iterable(self.tags or [])) - {"O"})]

    def where(self, index: int) -> str:
        """``"train.conll line 7"`` for sentence ``index`` (0-based)."""
        return at(self.source, "line", None if self.rows is None else self.rows[index])


def read_tagged(
    path: str, format: str = "auto", token_column: int = 0, tag_column: int | None = -1, scheme: str = "auto"
) -> TaggedSentences:
    """Read a tagged file and return its sentences with IOB2 tags.

    ``auto`` format: ``.jsonl``/``.json`` -> jsonl, a first line ``text_a<TAB>...`` -> msra,
    else conll.  ``token_column``/``tag_column`` pick conll columns (negative counts from
    the end); a single-column file, or ``tag_column=None``, gives ``tags=None``.  ``scheme``
    (``auto`` = :func:`detect_scheme`) says how tags are converted to IOB2; invalid
    sequences left after conversion are repaired (:func:`repair_iob2`), counted in
    ``repaired`` and reported in one warning.  Any problem raises a one-line UserError.
    """
    path = str(path)
    if format not in TAGGED_FORMATS:
        raise UserError(f"{path}: {unknown_name('tagged data format', str(format), TAGGED_FORMATS)}")
    if scheme not in SCHEMES:
        raise UserError(f"{path}: {unknown_name('tag scheme', str(scheme), SCHEMES)}")
    format, scheme = _ALIASES.get(format, format), _ALIASES.get(scheme, scheme)
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, not a file; pass a CoNLL, MSRA tsv or JSON Lines file")
    check_file(path)
    text = decode_file(path)
    if format == "auto":
        format = _detect_format(path, text)
    if not text.strip():
        raise UserError(f"{path}: file is empty; expected {_EXPECTED[format]}")
    if format == "jsonl":
        tokens, tags, rows = _read_jsonl(text, path)
    elif format == "msra":
        tokens, tags, rows = _read_msra(text, path)
    else:
        tokens, tags, rows = _read_conll(text, path, token_column, tag_column)
    if not tokens:
        raise UserError(f"{path}: no sentences found; expected {_EXPECTED[format]}")
    sentences = TaggedSentences(tokens=tokens, tags=tags, rows=rows, source=path)
    if tags is not None:
        _normalize(sentences, scheme, one_token_per_line=format == "conll")
    return sentences


_EXPECTED = {
    "conll": "one token and its tag per line, a blank line between sentences",
    "msra": "a header line 'text_a<TAB>label', then characters and tags joined by \\x02",
    "jsonl": 'one JSON object per line like {"tokens": [...], "tags": [...]}',
}


def _detect_format(path: str, text: str) -> str:
    if os.path.splitext(path)[1].lower() in (".jsonl", ".json"):
        return "jsonl"
    first = next((line for line in text.split("\n", 50) if line.strip()), "")
    return "msra" if first.split("\t")[0].strip() == "text_a" else "conll"


def _resolve_column(column: int, width: int, name: str, path: str, line: int) -> int:
    if not -width <= column < width:
        raise UserError(f"{path} line {line}: {name} {column} does not exist: the line has {width} columns "
                        f"(0..{width - 1}); set {name}")
    return column % width


def _read_conll(text: str, path: str, token_column: int, tag_column: int | None) -> tuple[list, list | None, list]:
    """Sentences of a column file; every token line must have as many columns as the first."""
    lines = text.split("\n")
    first = next((line for line in lines if line.strip() and not _is_docstart(line)), "")
    tab = "\t" in first
    tokens, tags, rows = [], [], []  # per sentence: tokens, tags, line of the first token
    width = width_line = token_index = tag_index = first_line = 0
    for number, line in enumerate(lines, start=1):
        stripped = line.rstrip()
        if not stripped or (stripped[0] == "-" and _is_docstart(stripped)):
            first_line = 0  # a sentence break
            continue
        fields = stripped.split("\t") if tab else stripped.split()
        if not width:
            width, width_line = len(fields), number
            token_index = _resolve_column(token_column, width, "token_column", path, number)
            if tag_column is not None and width > 1:
                tag_index = _resolve_column(tag_column, width, "tag_column", path, number)
                if tag_index == token_index:
                    raise UserError(f"{path} line {number}: token_column and tag_column are both column {tag_index}")
        elif len(fields) != width:
            raise UserError(
                f"{path} line {number}: expected {width} {'tab-separated' if tab else 'whitespace-separated'} "
                f"columns like line {width_line}, found {len(fields)}; every token line needs the same columns"
            )
        if not first_line:
            first_line = number
            rows.append(number)
            sentence_tokens: list[str] = []
            sentence_tags: list[str] = []
            tokens.append(sentence_tokens)
            tags.append(sentence_tags)
        sentence_tokens.append(fields[token_index])
        sentence_tags.append(fields[tag_index])
    has_tags = tag_column is not None and width > 1
    return tokens, (tags if has_tags else None), rows


def _is_docstart(line: str) -> bool:
    return line.startswith(DOCSTART) and line.split(maxsplit=1)[0] == DOCSTART


def _read_msra(text: str, path: str) -> tuple[list, list | None, list]:
    """``text_a<TAB>label`` tsv; both fields join one item per character with ``\\x02``."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip())
    header = [name.strip() for name in lines[start].split("\t")]
    if "text_a" not in header:
        raise UserError(f"{path} line {start + 1}: expected a header line 'text_a<TAB>label', found {show(lines[start])}")
    text_index = header.index("text_a")
    label_index = header.index("label") if "label" in header else None
    tokens, tags, rows = [], [], []  # per sentence: tokens, tags, line of the first token
    for number, line in enumerate(lines[start + 1 :], start=start + 2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise UserError(f"{path} line {number}: expected {len(header)} tab-separated fields "
                            f"({', '.join(header)}), found {len(fields)}")
        characters = fields[text_index].split(MSRA_SEPARATOR)
        if label_index is not None:
            labels = fields[label_index].strip().split(MSRA_SEPARATOR)
            if len(labels) != len(characters):
                raise UserError(f"{path} line {number}: {len(characters)} characters but {len(labels)} tags; "
                                "text_a and label need one \\x02-separated tag per character")
            tags.append(labels)
        tokens.append(characters)
        rows.append(number)
    return tokens, (tags if label_index is not None else None), rows


def _read_jsonl(text: str, path: str) -> tuple[list, list | None, list]:
    """One ``{"tokens": [...], "tags": [...]}`` per line; ``tags`` on all lines or none."""
    tokens, tags, rows = [], [], []  # per sentence: tokens, tags, line of the first token
    for number, record in json_lines(text, path):
        if not isinstance(record, dict) or not _is_strings(record.get("tokens")) or not record["tokens"]:
            raise UserError(f"{path} line {number}: expected an object with a non-empty list of strings "
                            f'"tokens" (and "tags"), like {{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}}')
        if rows and ("tags" in record) != (tags != []):
            raise UserError(f'{path} line {number}: "tags" must be given on every line or on none')
        if "tags" in record:
            found, wanted = record["tags"], len(record["tokens"])
            if not _is_strings(found) or len(found) != wanted:
                raise UserError(f'{path} line {number}: {wanted} tokens but tags is {show(found)}; '
                                '"tags" needs one string per token')
            tags.append(found)
        tokens.append(record["tokens"])
        rows.append(number)
    return tokens, (tags or None), rows


def _is_strings(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(value, str) for value in values)


def _normalize(sentences: TaggedSentences, scheme: str, one_token_per_line: bool) -> None:
    """Check the tags, convert them to IOB2 in place, repair invalid sequences, warn once with the count."""
    assert sentences.tags is not None and sentences.rows is not None
    rows, per_line = sentences.rows, int(one_token_per_line)  # a token's line: rows[sentence] + position * per_line
    bad = {tag for tag in set(chain.from_iterable(sentences.tags)) if not _TAG.fullmatch(tag)}
    if bad:
        index, position = next((i, j) for i, tags in enumerate(sentences.tags) for j, tag in enumerate(tags)
                               if tag in bad)
        raise UserError(
            f"{sentences.source} line {rows[index] + position * per_line}: tag {show(sentences.tags[index][position])} "
            "is neither 'O' nor PREFIX-TYPE with prefix B, I, E or S (e.g. B-PER); fix it or choose the tag column")
    if scheme == "auto":
        scheme = detect_scheme(sentences.tags)
    if scheme == "bioes":
        sentences.tags = [from_bioes(tags) for tags in sentences.tags]
    elif any(tag[0] in "ES" for tag in set(chain.from_iterable(sentences.tags))):
        raise UserError(f"{sentences.source}: E-/S- tags found but scheme is {scheme}; set the scheme to bioes or auto")
    if scheme == "iob1":  # converting IOB1 is not a repair: nothing left to repair afterwards
        sentences.tags = [to_iob2(tags) for tags in sentences.tags]
        return
    first: tuple[int, int] | None = None
    for index, tags in enumerate(sentences.tags):
        fixed, changed = _iob2_changes(tags)
        if changed:
            sentences.tags[index] = fixed
            sentences.repaired += len(changed)
            first = first or (index, changed[0])
    if first is not None:
        logger.warning("%s: repaired %d invalid BIO tags (first at line %d): an I-X that does not continue an X "
                       "entity now starts one (B-X)", sentences.source, sentences.repaired,
                       rows[first[0]] + first[1] * per_line)


def _iob2_changes(tags: list[str]) -> tuple[list[str], list[int]]:
    """IOB2 tags and the positions changed: ``I-X`` not preceded by ``B-X``/``I-X`` -> ``B-X``."""
    fixed = list(tags)
    changed: list[int] = []
    previous = None  # type of the entity the previous token is in, None after O
    for position, tag in enumerate(tags):
        if tag == "O":
            previous = None
            continue
        kind = tag[2:]
        if tag[0] == "I" and kind != previous:
            fixed[position] = "B-" + kind
            changed.append(position)
        previous = kind
    return fixed, changed


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (or invalid IOB2) -> IOB2: an ``I-X`` after ``O``, another type or at the start becomes ``B-X``.

    Valid IOB2 is returned unchanged.

    >>> to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    ['B-PER', 'I-PER', 'O', 'B-LOC', 'B-LOC']
    """
    return _iob2_changes(tags)[0]


def repair_iob2(tags: list[str]) -> tuple[list[str], int]:
    """Repair invalid IOB2 (``I-X`` after ``O`` or another type -> ``B-X``); return ``(tags, n_changed)``."""
    fixed, changed = _iob2_changes(tags)
    return fixed, len(changed)


def to_bioes(tags: list[str]) -> list[str]:
    """IOB2 -> BIOES: the last token of a multi-token entity is ``E-X``, a one-token entity ``S-X``.

    The input is first passed through :func:`to_iob2`, so IOB1 input works too.

    >>> to_bioes(["B-PER", "I-PER", "I-PER", "O", "B-LOC"])
    ['B-PER', 'I-PER', 'E-PER', 'O', 'S-LOC']
    """
    tags = to_iob2(tags)
    ends = [i + 1 == len(tags) or tags[i + 1] != "I-" + tag[2:] for i, tag in enumerate(tags)]  # entity ends here
    return [_LAST[tag[0]] + tag[1:] if end and tag != "O" else tag for tag, end in zip(tags, ends, strict=True)]


def from_bioes(tags: list[str]) -> list[str]:
    """BIOES -> IOB2: ``S-X`` -> ``B-X``, ``E-X`` -> ``I-X`` (``from_bioes(to_bioes(t)) == t`` for IOB2 ``t``)."""
    return ["B" + tag[1:] if tag[0] == "S" else "I" + tag[1:] if tag[0] == "E" else tag for tag in tags]


def detect_scheme(sentences: list[list[str]]) -> str:
    """``"bioes"`` iff some ``E-``/``S-`` tag occurs; else ``"iob1"`` iff the ``I-X`` tags that begin an
    entity (at sentence start, after ``O`` or after another type) outnumber all ``B-`` tags; else ``"iob2"``.

    IOB1 uses ``B-`` only between adjacent same-type entities, while IOB2 begins every
    entity with ``B-``, so in IOB2 data an ``I-`` start is a rare error (repaired, not converted).
    """
    prefixes = {tag[0] for tag in set(chain.from_iterable(sentences))}
    if prefixes & {"E", "S"}:
        return "bioes"
    starts = sum(len(_iob2_changes(tags)[1]) for tags in sentences)
    begins = sum(tag.startswith("B-") for tags in sentences for tag in tags)
    return "iob1" if starts > begins else "iob2"


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entities ``(type, start, end)`` (token indices, ``end`` exclusive) of strict IOB2 tags.

    An entity is ``B-X`` followed by any ``I-X``; an ``I-X`` that does not continue an X
    entity starts nothing (seqeval's ``mode="strict", scheme=IOB2``).

    >>> entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    [('PER', 0, 2), ('LOC', 4, 5)]
    """
    found: list[tuple[str, int, int]] = []
    position = 0
    while position < len(tags):
        tag = tags[position]
        position += 1
        if tag.startswith("B-"):
            start, inside = position - 1, "I-" + tag[2:]
            while position < len(tags) and tags[position] == inside:
                position += 1
            found.append((tag[2:], start, position))
    return found


def char_spans(tokens: list[str], text: str | None = None, joiner: str = " ") -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each token (``end`` exclusive) in the sentence text.

    Without ``text`` the sentence is ``joiner.join(tokens)`` (``" "`` for English words, ``""``
    for Chinese characters): token ``i`` starts at ``sum(len(tokens[k]) + len(joiner) for k < i)``.
    With ``text`` each token is searched left to right from the end of the previous one.
    """
    spans: list[tuple[int, int]] = []
    position = 0
    for index, token in enumerate(tokens):
        start = position if text is None else text.find(token, position)
        if start < 0:
            raise UserError(f"token {index} {show(token)} not found in the text after character {position}: "
                            "pass the text the tokens were cut from")
        spans.append((start, start + len(token)))
        position = start + len(token) + (len(joiner) if text is None else 0)
    return spans


def entities_with_offsets(
    tokens: list[str], tags: list[str], joiner: str = " ", text: str | None = None
) -> list[dict[str, Any]]:
    """Entities of ``tags`` as ``{"type", "text", "start", "end", "token_start", "token_end"}``.

    ``start``/``end`` are character offsets (``end`` exclusive) into ``text``, which
    defaults to ``joiner.join(tokens)``; ``token_start``/``token_end`` are token indices.
    """
    if len(tokens) != len(tags):
        raise UserError(f"{len(tokens)} tokens but {len(tags)} tags; need one tag per token")
    spans = char_spans(tokens, text, joiner)
    text = joiner.join(tokens) if text is None else text
    return [{"type": kind, "text": text[spans[first][0] : spans[last - 1][1]], "start": spans[first][0],
             "end": spans[last - 1][1], "token_start": first, "token_end": last} for kind, first, last in entities(tags)]
