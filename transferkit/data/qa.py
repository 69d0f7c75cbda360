"""Read extractive question answering data: official SQuAD v1.1 JSON or a JSON Lines form.

Conventions
-----------
* ``answer_start`` is the 0-based **character** offset of the answer in its context, so
  ``context[answer_start:answer_start + len(text)] == text`` for every kept answer.
* Every reference answer is kept (SQuAD dev questions have several); training code picks
  one (usually the first), evaluation takes the maximum over all of them.
* An answer whose offset does not match its context is first searched for within
  ``REALIGN_WINDOW`` characters of the given offset; if found (nearest occurrence wins)
  its offset is fixed and counted in ``realigned``, otherwise the answer is dropped and
  counted in ``dropped_answers``.  A question left with no valid answer is skipped: never
  silently trained on.  Empty contexts and empty questions are skipped the same way.
  Skipped question ids are recorded and one warning on the ``transferkit`` logger names
  the count and the first ids.
* Anything structurally wrong with the file (invalid JSON, missing keys, wrong types,
  duplicate ids) raises a one-line :class:`UserError` naming the file and the line
  (JSON Lines) or the position (``data[3].paragraphs[0].qas[2]``, official JSON).

Formats
-------
``json``: ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}``.
``jsonl``: one object per line with ``id``, ``question``, ``context``, ``answers`` and an
optional ``title``; ``answers`` is either Hugging Face style ``{"text": [...],
"answer_start": [...]}`` or a list of ``{"text", "answer_start"}``.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from transferkit.core.errors import UserError, unknown_name
from transferkit.data._messages import show, show_list
from transferkit.data.readers import check_file, decode_file, json_lines

__all__ = ["QA_FORMATS", "REALIGN_WINDOW", "QAExamples", "align_answer", "read_squad", "split_by_title"]

QA_FORMATS = ("auto", "json", "jsonl")
REALIGN_WINDOW = 20
"""How far (in characters, either side) a misplaced answer is searched for."""

logger = logging.getLogger("transferkit")

_JSON_HINT = (
    'expected official SQuAD v1.1 JSON: {"data": [{"title", "paragraphs": [{"context", '
    '"qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}'
)
_JSONL_HINT = 'expected one object per line: {"id", "question", "context", "answers": {"text": [...], "answer_start": [...]}}'


@dataclass
class QAExamples:
    """Validated extractive QA examples as aligned lists (one entry per question).

    ``answers[i]`` lists every valid reference of question ``i`` as ``{"text", "answer_start"}``
    (``None`` when the file had no answers, i.e. read for prediction).  ``titles[i]`` is the
    article title ("" when the file gave none), used for article-level splits.  ``skipped``,
    ``skipped_ids``, ``realigned`` and ``dropped_answers`` describe the file as read and are
    carried over unchanged by :meth:`subset`.
    """

    ids: list[str]
    questions: list[str]
    contexts: list[str]
    answers: list[list[dict[str, Any]]] | None
    titles: list[str]
    source: str = "<memory>"
    skipped: int = 0
    skipped_ids: list[str] = field(default_factory=list)
    realigned: int = 0
    dropped_answers: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Any) -> QAExamples:
        """The examples at ``indices`` (any iterable of ints), in that order."""
        indices = [int(i) for i in indices]

        def pick(values: list) -> list:
            return [values[i] for i in indices]

        return QAExamples(
            ids=pick(self.ids), questions=pick(self.questions), contexts=pick(self.contexts),
            answers=None if self.answers is None else pick(self.answers), titles=pick(self.titles),
            source=self.source, skipped=self.skipped, skipped_ids=list(self.skipped_ids),
            realigned=self.realigned, dropped_answers=self.dropped_answers,
        )


@dataclass
class _Record:
    """One question as found in the file, before validation; ``where`` locates it for messages."""

    id: str
    question: str
    context: str
    title: str
    answers: list[dict[str, Any]] | None
    where: str


def read_squad(path: str, format: str = "auto", require_answers: bool = True) -> QAExamples:
    """Read SQuAD v1.1 JSON or its JSON Lines form into validated :class:`QAExamples`.

    Parameters
    ----------
    path : str
        The file to read (UTF-8).
    format : {"auto", "json", "jsonl"}
        ``auto``: ``.jsonl`` files are JSON Lines; otherwise a single JSON document with a
        ``data`` key is official SQuAD, and several objects (one per line) are JSON Lines.
    require_answers : bool, default True
        Training/evaluation data: every question needs at least one answer that matches its
        context; questions whose answers all fail are skipped, and a question with no answers
        at all is an error (SQuAD 2.0 unanswerable questions are not supported).  ``False``
        (reading for prediction): questions without answers are kept with ``[]``.

    Raises
    ------
    UserError
        One line naming the file (and the line or position) for any structural problem.
    """
    path = str(path)
    if format not in QA_FORMATS:
        raise UserError(f"{path}: {unknown_name('format', str(format), QA_FORMATS)}")
    check_file(path)
    text = decode_file(path)
    if not text.strip():
        raise UserError(f"{path}: file is empty; {_JSON_HINT}")
    if format == "auto":
        format = "jsonl" if os.path.splitext(path)[1].lower() == ".jsonl" else _sniff(text, path)
    records = _json_records(text, path) if format == "json" else _jsonl_records(text, path)
    return _validate(list(records), path, require_answers)


def _sniff(text: str, path: str) -> str:
    """``json`` for one document with a ``data`` key, ``jsonl`` for one object per line."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return "jsonl"
        raise UserError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno}); {_JSON_HINT}") from None
    if isinstance(document, dict) and "data" not in document and "question" in document:
        return "jsonl"  # a JSON Lines file holding a single question
    return "json"


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str, path: str, hint: str) -> Any:
    """``obj[key]`` checked to be of ``kind``; a one-line UserError otherwise."""
    if not isinstance(obj, dict):
        raise UserError(f"{path} {where}: expected a JSON object, found a {type(obj).__name__}; {hint}")
    if key not in obj:
        raise UserError(f"{path} {where}: missing key {key!r}; {hint}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise UserError(f"{path} {where}: {key!r} must be a {names}, found {show(value)}; {hint}")
    return value


def _json_records(text: str, path: str) -> Iterator[_Record]:
    """Walk official SQuAD JSON: articles -> paragraphs -> questions."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno}); {_JSON_HINT}") from None
    articles = _get(document, "data", list, "(top level)", path, _JSON_HINT)
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        title = _get(article, "title", str, where, path, _JSON_HINT) if isinstance(article, dict) and "title" in article else ""
        for p, paragraph in enumerate(_get(article, "paragraphs", list, where, path, _JSON_HINT)):
            at_paragraph = f"{where}.paragraphs[{p}]"
            context = _get(paragraph, "context", str, at_paragraph, path, _JSON_HINT)
            for q, qa in enumerate(_get(paragraph, "qas", list, at_paragraph, path, _JSON_HINT)):
                at_question = f"{at_paragraph}.qas[{q}]"
                yield _Record(
                    id=str(_get(qa, "id", (str, int), at_question, path, _JSON_HINT)),
                    question=_get(qa, "question", str, at_question, path, _JSON_HINT),
                    context=context, title=title,
                    answers=_answers(qa.get("answers"), at_question, path, _JSON_HINT),
                    where=at_question,
                )


def _jsonl_records(text: str, path: str) -> Iterator[_Record]:
    """One question per line; blank lines are skipped."""
    for number, record in json_lines(text, path, _JSONL_HINT):
        where = f"line {number}"
        title = _get(record, "title", str, where, path, _JSONL_HINT) if isinstance(record, dict) and record.get("title") is not None else ""
        yield _Record(
            id=str(_get(record, "id", (str, int), where, path, _JSONL_HINT)),
            question=_get(record, "question", str, where, path, _JSONL_HINT),
            context=_get(record, "context", str, where, path, _JSONL_HINT),
            title=title,
            answers=_answers(record.get("answers"), where, path, _JSONL_HINT),
            where=where,
        )


def _answers(value: Any, where: str, path: str, hint: str) -> list[dict[str, Any]] | None:
    """Answers as a list of ``{"text", "answer_start"}`` from either accepted shape (None if absent)."""
    if value is None:
        return None
    if isinstance(value, dict):  # Hugging Face datasets style: parallel lists
        texts = _get(value, "text", list, f"{where} answers", path, hint)
        starts = _get(value, "answer_start", list, f"{where} answers", path, hint)
        if len(texts) != len(starts):
            raise UserError(
                f"{path} {where}: answers has {len(texts)} texts but {len(starts)} answer_start values; they must pair up"
            )
        value = [{"text": t, "answer_start": s} for t, s in zip(texts, starts, strict=True)]
    if not isinstance(value, list):
        raise UserError(f"{path} {where}: 'answers' must be a list or an object, found {show(value)}; {hint}")
    answers = []
    for k, answer in enumerate(value):
        at_answer = f"{where} answers[{k}]"
        answers.append({
            "text": _get(answer, "text", str, at_answer, path, hint),
            "answer_start": _get(answer, "answer_start", int, at_answer, path, hint),
        })
    return answers


def align_answer(context: str, text: str, start: int, window: int = REALIGN_WINDOW) -> int | None:
    """The offset of ``text`` in ``context``: ``start`` if it matches, else the nearest
    occurrence starting within ``window`` characters of ``start``, else ``None``."""
    if not text.strip():
        return None
    if start >= 0 and context[start : start + len(text)] == text:
        return start
    low = max(0, start - window)
    best: int | None = None
    found = context.find(text, low)
    while found != -1 and found <= start + window:
        if best is None or abs(found - start) < abs(best - start):
            best = found
        found = context.find(text, found + 1)
    return best


def _validate(records: list[_Record], path: str, require_answers: bool) -> QAExamples:
    """Check ids, contexts, questions and answers; skip (and count) what cannot be used."""
    kept: list[tuple[_Record, list[dict[str, Any]]]] = []
    reasons: Counter[str] = Counter()
    skipped_ids: list[str] = []
    realigned = dropped = 0
    seen: dict[str, str] = {}
    unanswered = [r for r in records if not r.answers]
    if require_answers and unanswered:
        more = f" ({len(unanswered) - 1} more such questions)" if len(unanswered) > 1 else ""
        raise UserError(
            f"{path} {unanswered[0].where}: question {show(unanswered[0].id)} has no answers{more}; unanswerable "
            "(SQuAD 2.0) questions are not supported; add answers or read with require_answers=False for prediction"
        )
    for record in records:
        if record.id in seen:
            raise UserError(f"{path} {record.where}: duplicate question id {show(record.id)} (first at {seen[record.id]}); ids must be unique")
        seen[record.id] = record.where
        reason = "empty context" if not record.context.strip() else "empty question" if not record.question.strip() else None
        answers: list[dict[str, Any]] = []
        for answer in record.answers or []:
            start = align_answer(record.context, answer["text"], answer["answer_start"])
            if start is None:
                dropped += 1
                continue
            realigned += start != answer["answer_start"]
            answers.append({"text": answer["text"], "answer_start": start})
        if reason is None and require_answers and not answers:
            reason = "no answer matches the context"
        if reason is not None:
            reasons[reason] += 1
            skipped_ids.append(record.id)
        else:
            kept.append((record, answers))
    _warn(path, len(records), reasons, skipped_ids, realigned, dropped)
    if not kept:
        raise UserError(f"{path}: no usable questions ({len(records)} read, {len(skipped_ids)} skipped); see the warning above")
    has_answers = require_answers or any(r.answers is not None for r in records)
    return QAExamples(
        ids=[r.id for r, _ in kept], questions=[r.question for r, _ in kept], contexts=[r.context for r, _ in kept],
        answers=[a for _, a in kept] if has_answers else None, titles=[r.title for r, _ in kept], source=path,
        skipped=len(skipped_ids), skipped_ids=skipped_ids, realigned=realigned, dropped_answers=dropped,
    )


def _warn(path: str, total: int, reasons: Counter[str], skipped_ids: list[str], realigned: int, dropped: int) -> None:
    """One warning summarising everything that was skipped, dropped or repaired."""
    parts = []
    if skipped_ids:
        why = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
        parts.append(f"skipped {len(skipped_ids)} of {total} questions ({why}): ids {show_list(skipped_ids, 5)}")
    if dropped:
        parts.append(f"dropped {dropped} answers not found within {REALIGN_WINDOW} characters of their answer_start")
    if realigned:
        parts.append(f"realigned {realigned} answers whose answer_start was off")
    if parts:
        logger.warning("%s: %s", path, "; ".join(parts))


def split_by_title(
    examples: QAExamples, eval_titles: int, seed: int | None = None
) -> tuple[QAExamples, QAExamples]:
    """Split by article so no article (and no paragraph) is in both parts.

    Titles are ordered by first appearance; ``seed=None`` puts the **last** ``eval_titles``
    titles in the eval part (e.g. SQuAD dev articles 0-19 train, 20-23 eval); an int seed
    draws them at random (``random.Random(seed)``).  Both parts keep the file order.

    Returns
    -------
    (train, eval) : tuple of QAExamples
    """
    titles = list(dict.fromkeys(examples.titles))
    if not 0 < int(eval_titles) < len(titles):
        fix = (f"pick 1 to {len(titles) - 1}" if len(titles) > 1
               else "add a 'title' to the questions (those without one share the title '')")
        raise UserError(f"{examples.source}: cannot hold out {eval_titles} of {len(titles)} article titles; {fix}")
    held = set(titles[-int(eval_titles):] if seed is None else random.Random(seed).sample(titles, int(eval_titles)))
    train = [i for i, title in enumerate(examples.titles) if title not in held]
    evaluation = [i for i, title in enumerate(examples.titles) if title in held]
    return examples.subset(train), examples.subset(evaluation)

