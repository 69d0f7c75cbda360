"""ROUGE-1/2/L for summaries, via Google's ``rouge-score``, with a tokenizer that works for Chinese.

The pitfall this module exists for: ``rouge-score``'s default tokenizer lower-cases and then
replaces everything outside ``[a-z0-9]`` with spaces, so Chinese text becomes *no tokens at
all* and every Chinese score is 0, even for a prediction identical to its reference.  For
``zh`` we pass :class:`CJKTokenizer` instead (each CJK character a token, other letter/digit
runs a token, punctuation dropped: :func:`~transferkit.evaluation.qa.cjk_tokenize`).

Conventions: scores are F-measures; ``rougeL`` is the summary-level LCS over the whole text
(no sentence splitting, i.e. not ``rougeLsum``); English uses the default tokenizer with the
Porter stemmer (``use_stemmer=True``, as in most papers; :class:`StemmingTokenizer` memoises it); corpus figures are means over documents × 100.
``language="auto"`` decides once from the references (:func:`~transferkit.evaluation.qa.detect_language`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from transferkit.core.errors import UserError
from transferkit.evaluation.bootstrap import bootstrap_mean_ci
from transferkit.evaluation.qa import LANGUAGES, cjk_tokenize, detect_language

__all__ = ["ROUGE_TYPES", "CJKTokenizer", "StemmingTokenizer", "rouge_example_scores", "rouge_scorer_for", "rouge_scores"]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class CJKTokenizer:
    """A ``rouge-score`` tokenizer (it only needs ``tokenize(text) -> list[str]``) for CJK text."""

    def tokenize(self, text: str) -> list[str]:
        return cjk_tokenize(text)


class StemmingTokenizer:
    """``rouge-score``'s default tokenizer with ``use_stemmer=True``, token for token, but with
    the Porter stems memoised: stemming is ~2/3 of English ROUGE time and words repeat a lot."""

    def tokenize(self, text: str) -> list[str]:
        from rouge_score import tokenize

        return tokenize.tokenize(text, _CachedStemmer)


class _CachedStemmer:
    @staticmethod
    def stem(word: str) -> str:
        return _porter_stem(word)


@functools.lru_cache(maxsize=200_000)
def _porter_stem(word: str) -> str:
    return _porter().stem(word)


@functools.cache
def _porter() -> Any:
    from nltk.stem import porter  # what rouge-score's DefaultTokenizer uses

    return porter.PorterStemmer()


def rouge_scorer_for(language: str) -> Any:
    """A ``rouge_score.rouge_scorer.RougeScorer`` for ROUGE-1/2/L set up for ``en`` or ``zh``."""
    try:
        from rouge_score import rouge_scorer  # lazy: pulls in nltk
    except ImportError:  # pragma: no cover - a declared dependency
        raise UserError("ROUGE needs the rouge-score package: pip install 'rouge-score>=0.1.2'") from None
    tokenizer = CJKTokenizer() if language == "zh" else StemmingTokenizer()
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=tokenizer)


def _check(predictions: Sequence[str], references: Sequence[Any], language: str) -> tuple[list[str], list[list[str]], str]:
    """Aligned predictions and references (each a list of strings) and the resolved language."""
    if language not in LANGUAGES:
        raise UserError(f"unknown language {language!r}; valid: {', '.join(LANGUAGES)}")
    if isinstance(predictions, str) or isinstance(references, str):
        raise UserError("predictions and references must be lists of texts, one per document, not a single string")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    if len(predictions) != len(refs):
        raise UserError(f"got {len(predictions)} predictions for {len(refs)} references; they must align one to one")
    if not refs:
        raise UserError("no summaries to evaluate")
    if any(not r for r in refs):
        raise UserError("every document needs at least one reference summary")
    if language == "auto":
        language = detect_language([text for texts in refs for text in texts])
    return [str(p) for p in predictions], refs, language


def rouge_example_scores(
    predictions: Sequence[str], references: Sequence[Any], language: str = "auto"
) -> dict[str, np.ndarray]:
    """Per-document ROUGE-1/2/L F-measures in [0, 1] (max over references when several)."""
    predicted, refs, language = _check(predictions, references, language)
    scorer = rouge_scorer_for(language)
    columns: dict[str, list[float]] = {name: [] for name in ROUGE_TYPES}
    for prediction, targets in zip(predicted, refs, strict=True):
        scores = scorer.score(targets[0], prediction) if len(targets) == 1 else scorer.score_multi(targets, prediction)
        for name in ROUGE_TYPES:
            columns[name].append(scores[name].fmeasure)
    return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}


def rouge_scores(
    predictions: Sequence[str],
    references: Sequence[Any],
    language: str = "auto",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean ROUGE-1/2/L F-measure × 100 over documents, with percentile bootstrap CIs.

    Parameters
    ----------
    predictions : list of str
        One generated summary per document.
    references : list of str (or list of list of str for several references)
        The reference summaries, aligned with ``predictions``.
    language : {"auto", "en", "zh"}
        ``zh`` tokenizes with :class:`CJKTokenizer`; ``en`` uses the default tokenizer + stemmer.
    n_resamples, confidence, seed
        Bootstrap over documents (:func:`~transferkit.evaluation.bootstrap.bootstrap_mean_ci`).

    Returns
    -------
    dict
        ``rouge1``, ``rouge2``, ``rougeL`` (0-100), ``rouge1_ci``, ``rouge2_ci``, ``rougeL_ci``
        (``[low, high]``, 0-100), ``num_examples`` and ``language``.
    """
    _, _, resolved = _check(predictions, references, language)
    per_document = rouge_example_scores(predictions, references, resolved)
    result: dict[str, Any] = {name: 100.0 * float(values.mean()) for name, values in per_document.items()}
    for name, values in per_document.items():
        result[f"{name}_ci"] = [100.0 * v for v in bootstrap_mean_ci(values, n_resamples, confidence, seed)]
    return {**result, "num_examples": len(predictions), "language": resolved}
