"""Read the Amazon multi-domain sentiment reviews (Blitzer, Dredze & Pereira 2007, "Biographies, Bollywood,
Boom-boxes and Blenders: Domain Adaptation for Sentiment Classification", ACL).

Each domain (books, dvd, electronics, kitchen) is a directory of ``positive.review`` and
``negative.review`` (and, in the full release, ``unlabeled.review``).  A file is pseudo-XML, not
well-formed (bare ``&``), so it is parsed leniently with regular expressions::

    <reviews>                                  (a root some copies add)
    <review>
    <unique_id> ... </unique_id> ... <rating> 5.0 </rating> <title> ... </title> ...
    <review_text>
    the text: one example
    </review_text>
    ...
    </review>
    ...

One example per ``<review>`` block: ``text`` = the ``<review_text>`` content with HTML entities
(``&quot;``, ``&amp;``, ``&#45;``) unescaped and outer whitespace stripped; ``label`` = the file
name without ``.review`` (``positive``, ``negative``; ``unlabeled.review`` has no labels).  The
result is the same :class:`Table` the csv/tsv reader gives (columns ``text`` and ``label``, each
record's 1-based line is the line of its ``<review>``), so ``data.format: amazon_reviews``
(auto-detected for ``.review`` files and directories holding them) goes through the usual
validation, splits and budgets.
"""

from __future__ import annotations

import html
import logging
import os
import re

from transferkit.core.contracts import TextExamples
from transferkit.core.errors import UserError
from transferkit.data.examples import to_examples
from transferkit.data.labels import LabelMap
from transferkit.data.readers import REVIEW_EXTENSION, Table, check_file, decode_file

logger = logging.getLogger("transferkit")

UNLABELED = "unlabeled"
"""The stem of the release's unlabelled file: its reviews have no label (a directory read skips it)."""

FORMAT_HINT = "expected Blitzer et al.'s .review format: <review> ... <review_text> TEXT </review_text> ... </review>"

_REVIEW_TAG = re.compile(r"<(/?)review>")
_REVIEW_TEXT = re.compile(r"<review_text>(.*?)</review_text>", re.DOTALL)


def read_review_file(path: str, label_map: LabelMap | None = None) -> tuple[TextExamples, LabelMap | None]:
    """One ``.review`` file -> (examples, label map), as :func:`~transferkit.data.to_examples` returns them.

    Labels come from the file name; ``label_map`` encodes them against known classes (eval/test
    files), else the file's one label defines it.  ``unlabeled.review`` gives ``labels=None``.
    """
    return to_examples(review_file_table(path), "text", "label", label_map=label_map,
                       require_labels=_stem(path) != UNLABELED)


def read_review_dir(path: str, label_map: LabelMap | None = None) -> tuple[TextExamples, LabelMap | None]:
    """A domain directory (every labelled ``*.review`` file in it, by name) -> (examples, label map)."""
    return to_examples(review_dir_table(path), "text", "label", label_map=label_map)


def read_reviews(path: str) -> Table:
    """The table of a ``.review`` file or of a directory of them: what ``read_table`` returns for this format."""
    return review_dir_table(path) if os.path.isdir(path) else review_file_table(path)


def review_file_table(path: str) -> Table:
    """One ``.review`` file -> Table(text, label) (just text for ``unlabeled.review``); ``rows`` are the
    lines of the ``<review>`` tags."""
    path = str(path)
    check_file(path)
    text = decode_file(path)
    starts, bodies = _review_blocks(text, path)
    if not starts:
        raise UserError(f"{path}: no <review> blocks; {FORMAT_HINT}")
    data = {"text": [_review_text(body, path, line) for line, body in zip(starts, bodies, strict=True)]}
    if _stem(path) != UNLABELED:
        data["label"] = [_stem(path)] * len(starts)
    return Table(columns=list(data), data=data, rows=starts, source=path)


def review_dir_table(path: str) -> Table:
    """Every ``*.review`` file of a directory, sorted by name, except ``unlabeled.review``, in one Table.

    A record's ``rows`` entry counts reviews through the files in that order (unit ``review``:
    ``books review 1001`` is the first review of ``positive.review`` after 1000 negative ones).
    """
    path = str(path)
    if not os.path.isdir(path):
        raise UserError(f"{path}: not a directory; pass a folder holding positive.review and negative.review")
    names = sorted(name for name in os.listdir(path) if name.endswith(REVIEW_EXTENSION))
    if f"{UNLABELED}{REVIEW_EXTENSION}" in names:
        names.remove(f"{UNLABELED}{REVIEW_EXTENSION}")
        logger.info("%s: skipped %s%s (no labels; pass that file as an extra source for unlabelled text)",
                    path, UNLABELED, REVIEW_EXTENSION)
    if not names:
        raise UserError(f"{path}: no labelled .review files; expected e.g. positive.review and negative.review")
    texts: list[str] = []
    labels: list[str] = []
    for name in names:
        table = review_file_table(os.path.join(path, name))
        texts += table.data["text"]
        labels += table.data["label"]
    return Table(columns=["text", "label"], data={"text": texts, "label": labels}, rows=list(range(1, len(texts) + 1)),
                 source=path, unit="review")


def _stem(path: str) -> str:
    name = os.path.basename(str(path))
    return name[: -len(REVIEW_EXTENSION)] if name.endswith(REVIEW_EXTENSION) else os.path.splitext(name)[0]


def _review_blocks(text: str, path: str) -> tuple[list[int], list[str]]:
    """(1-based line of each ``<review>``, the text between it and its ``</review>``); unpaired tags are errors."""
    starts: list[int] = []
    bodies: list[str] = []
    line, offset = 1, 0  # the line number at character ``offset``
    open_line, open_end = 0, -1  # the unclosed <review>'s line and where its body starts; -1 = none open
    for match in _REVIEW_TAG.finditer(text):
        line += text.count("\n", offset, match.start())
        offset = match.start()
        closing = match.group(1) == "/"
        if not closing and open_end >= 0:
            raise UserError(f"{path} line {open_line}: <review> without </review> (the next <review> is at line "
                            f"{line}); {FORMAT_HINT}")
        if closing and open_end < 0:
            raise UserError(f"{path} line {line}: </review> without a <review> before it; {FORMAT_HINT}")
        if closing:
            starts.append(open_line)
            bodies.append(text[open_end: match.start()])
            open_end = -1
        else:
            open_line, open_end = line, match.end()
    if open_end >= 0:
        raise UserError(f"{path} line {open_line}: <review> without </review> (the file ends first); {FORMAT_HINT}")
    return starts, bodies


def _review_text(body: str, path: str, line: int) -> str:
    """The unescaped, stripped ``<review_text>`` of one review block (which starts at ``line``)."""
    match = _REVIEW_TEXT.search(body)
    if match is None:
        if "<review_text>" in body:  # name the line of the unclosed tag
            line += body.count("\n", 0, body.index("<review_text>"))
            raise UserError(f"{path} line {line}: <review_text> without </review_text>; {FORMAT_HINT}")
        raise UserError(f"{path} line {line}: review without <review_text>; {FORMAT_HINT}")
    return html.unescape(match.group(1)).strip()
