"""What a ``/predict`` request may carry: one kind of input the run's task reads, within the server's limits.

Every refusal is a :class:`RequestRefused` with its HTTP status and a one-line reason: 422 for a request no
limit would admit (no input, two kinds, an empty list, a blank text, a shape the task does not read), 413 for
one that is only too big (``max_texts`` inputs, ``max_chars`` characters per text), as TEI answers.
"""

from __future__ import annotations

from typing import Any

from transferkit.serving.server.config import ServeConfig
from transferkit.serving.server.schemas import FORM_FIELDS, PredictRequest


class RequestRefused(Exception):
    """A request the server answers with ``status`` and ``{"error": message, "error_type": kind}``."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers


def invalid(message: str) -> RequestRefused:
    return RequestRefused(422, "validation", message)


def max_body_bytes(config: ServeConfig) -> int:
    """The largest request body worth reading: ``max_texts`` inputs of two ``max_chars`` texts, every character
    escaped as ``\\uXXXX`` (6 bytes), plus JSON punctuation; a longer ``Content-Length`` is refused unread."""
    return config.max_texts * (2 * 6 * config.max_chars + 64) + 4096


def _given(request: PredictRequest) -> list[str]:
    """The input forms the request fills."""
    forms = {"text": request.texts, "pair": request.pairs, "tokens": request.tokens}
    given = [form for form, values in forms.items() if values is not None]
    if request.questions is not None or request.contexts is not None:
        given.append("question_context")
    return given


def _inputs(request: PredictRequest, form: str) -> list[Any]:
    """The request's inputs of ``form`` as ``Task.from_inputs`` reads them."""
    if form == "question_context":
        questions, contexts = request.questions or [], request.contexts or []
        if request.questions is None or request.contexts is None or len(questions) != len(contexts):
            raise invalid(f"questions and contexts go together, one context per question (got {len(questions)} "
                          f"questions and {len(contexts)} contexts)")
        return list(zip(questions, contexts, strict=True))
    values = {"text": request.texts, "pair": request.pairs, "tokens": request.tokens}[form]
    return [tuple(value) if form == "pair" else value for value in values or []]


def _check_text(text: str, where: str, max_chars: int) -> None:
    if not text.strip():
        raise invalid(f"{where} is empty: every text needs at least one non-space character")
    if len(text) > max_chars:
        raise RequestRefused(413, "payload_too_large", f"{where} has {len(text):,} characters; the limit is "
                                                       f"{max_chars:,} (--max-chars)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{where} is not valid Unicode text (a lone surrogate)") from None


def _check_input(value: Any, where: str, form: str, max_chars: int) -> None:
    """Every text of one input: not blank, at most ``max_chars`` (a token list: its tokens joined by spaces)."""
    if form == "tokens":
        if not value:
            raise invalid(f"{where} is empty: every sentence needs at least one token")
        for position, token in enumerate(value):
            _check_text(token, f"{where}[{position}]", max_chars)
        _check_text(" ".join(value), where, max_chars)
    elif isinstance(value, tuple):
        for part, text in zip(("first", "second") if form == "pair" else ("question", "context"), value, strict=True):
            _check_text(text, f"{where} ({part})", max_chars)
    else:
        _check_text(value, where, max_chars)


def request_inputs(request: PredictRequest, task: Any, config: ServeConfig) -> tuple[str, list[Any]]:
    """``(input form, inputs)`` of a request to ``task`` (its ``input_forms`` say what it reads), within limits."""
    accepted = " or ".join(FORM_FIELDS[form] for form in task.input_forms)
    given = _given(request)
    if not given:
        raise invalid(f"no inputs: this run's task '{task.name}' reads {accepted}")
    if len(given) > 1:
        raise invalid(f"one kind of input per request, not {' and '.join(FORM_FIELDS[form] for form in given)}")
    form = given[0]
    if form not in task.input_forms:
        raise invalid(f"this run's task '{task.name}' reads {accepted}, not {FORM_FIELDS[form]}")
    inputs = _inputs(request, form)
    field = FORM_FIELDS[form].split(" ")[0]
    if not inputs:
        raise invalid(f"{field} is empty: send at least one input")
    if len(inputs) > config.max_texts:
        raise RequestRefused(413, "payload_too_large", f"{len(inputs):,} inputs in one request; the limit is "
                                                       f"{config.max_texts:,} (--max-texts): split the request")
    for position, value in enumerate(inputs):
        _check_input(value, f"{field}[{position}]", form, config.max_chars)
    return form, inputs
