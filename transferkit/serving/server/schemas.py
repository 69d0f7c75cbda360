"""The JSON bodies of the HTTP API (pydantic models: FastAPI validates requests and writes the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

FORM_FIELDS = {"text": "texts", "pair": "pairs", "tokens": "tokens", "question_context": "questions + contexts"}
"""``Task.input_forms`` -> the request field(s) that carry inputs of that shape."""


class PredictRequest(BaseModel):
    """One kind of input, as the run's task reads it, and for a multi-task run the task to answer."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"texts": ["a gripping, funny film", "a dull mess"]},
        {"pairs": [["a man is playing a guitar", "someone plays music"]]},
        {"tokens": [["Alice", "visited", "Paris"]], "task": "ner"},
        {"questions": ["Who visited Paris?"], "contexts": ["Alice visited Paris in May."]}]})

    texts: list[StrictStr] | None = Field(None, description="texts (classification, NER split on whitespace, "
                                                            "summarization)")
    pairs: list[tuple[StrictStr, StrictStr]] | None = Field(None, description="text pairs (pair classification)")
    tokens: list[list[StrictStr]] | None = Field(None, description="pre-tokenized sentences (NER)")
    questions: list[StrictStr] | None = Field(None, description="questions (QA), one per context")
    contexts: list[StrictStr] | None = Field(None, description="contexts (QA), one per question")
    task: StrictStr | None = Field(None, description="a multi-task run's task (a data source's name); default: main")


class PredictResponse(BaseModel):
    """One record per input, in input order: the records ``transferkit predict`` writes (classification: ``text``,
    ``label``, ``probabilities``; NER: ``tokens``, ``tags``, ``entities``; QA: the answer span; summarization)."""

    predictions: list[dict[str, Any]]


class ErrorBody(BaseModel):
    """Every refusal: a one-line reason and its kind (as TEI answers)."""

    error: str
    error_type: str


class Health(BaseModel):
    """``ok`` once the model is loaded; ``loading`` or ``failed`` (with the reason) before, with status 503."""

    status: str
    error: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        400: "a body that is not JSON text (not UTF-8)", 401: "missing or wrong bearer token (--token-file)", 413: "too many inputs or too long a text",
        422: "malformed JSON, wrong field types, an empty list or inputs this run's task does not read",
        429: "the queue is full: retry later", 503: "the model is still loading (or failed to load)"}.items()}
"""The refusals ``/predict`` may answer with, for the OpenAPI schema."""
