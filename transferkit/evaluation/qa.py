"""Extractive QA metrics: the official SQuAD v1.1 evaluation, and its Chinese counterpart.

English (``language="en"``) reproduces ``evaluate-v1.1.py`` exactly:

* ``normalize_answer``: lower-case, drop ASCII punctuation, drop the articles ``a``/``an``/``the``
  (whole words), collapse whitespace;
* exact match: normalised prediction == normalised reference;
* token F1: ``common = |pred ∩ ref|`` as multisets of whitespace tokens,
  ``P = common / |pred|``, ``R = common / |ref|``, ``F1 = 2PR / (P + R)`` (0 when ``common = 0``,
  so two answers that normalise to nothing have EM 1 but F1 0, as in the official script);
* each score is the **maximum over the references** of a question; the corpus figures are
  means over questions, in percent.

Chinese (``language="zh"``, CMRC 2018 style) normalises with :func:`cjk_tokenize`: NFKC
(full-width forms become half-width), lower-case, every CJK character one token, every run
of other letters/digits one token, punctuation (full- and half-width), symbols and whitespace
dropped.  Exact match compares the concatenated tokens; F1 is the formula above over these
tokens, i.e. character-level F1 for Chinese text.  (CMRC's script scores F1 on the longest
common *substring*; the bag-of-characters overlap used here is the usual "character F1" and
is >= it.)

``language="auto"`` picks ``zh`` when the references hold at least as many CJK characters as
Latin words (:func:`detect_language`), once per call (corpus-level for :func:`squad_metrics`).
"""

from __future__ import annotations

import logging
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transferkit.core.errors import UserError
from transferkit.evaluation.bootstrap import bootstrap_mean_ci

__all__ = [
    "cjk_tokenize", "detect_language", "exact_match", "normalize_answer", "question_scores",
    "squad_metrics", "token_f1",
]

logger = logging.getLogger("transferkit")

LANGUAGES = ("auto", "en", "zh")
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"  # kana, Han, Hangul
_CJK = re.compile(f"[{_CJK_RANGES}]")
# one CJK character, or a run of word characters that are neither "_" nor CJK
_CJK_TOKEN = re.compile(f"[{_CJK_RANGES}]|[^\\W_{_CJK_RANGES}]+")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
CHUNK_ELEMENTS = 1 << 22


def normalize_answer(text: str) -> str:
    """The official SQuAD v1.1 normalisation: lower, remove punctuation, articles, extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def cjk_tokenize(text: str) -> list[str]:
    """Mixed segmentation for CJK text: each CJK character is a token, each run of other
    letters/digits is a (lower-case) token; punctuation, symbols and whitespace are dropped.

    >>> cjk_tokenize("北京，iPhone 6！")
    ['北', '京', 'iphone', '6']
    """
    return _CJK_TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def detect_language(texts: Sequence[str] | str) -> str:
    """``"zh"`` when the texts hold at least as many CJK characters as Latin words, else ``"en"``."""
    joined = texts if isinstance(texts, str) else "\n".join(texts)
    cjk = len(_CJK.findall(joined))
    return "zh" if cjk and cjk >= len(_LATIN_WORD.findall(joined)) else "en"


def _resolve(language: str, references: Sequence[str]) -> str:
    if language not in LANGUAGES:
        raise UserError(f"unknown language {language!r}; valid: {', '.join(LANGUAGES)}")
    return detect_language(references) if language == "auto" else language


def _tokens(text: str, language: str) -> list[str]:
    return cjk_tokenize(text) if language == "zh" else normalize_answer(text).split()


def _f1(prediction: list[str], reference: list[str]) -> float:
    common = sum((Counter(prediction) & Counter(reference)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(prediction), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def _as_references(references: Sequence[str] | str) -> list[str]:
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise UserError("a question needs at least one reference answer to be scored")
    return refs


def exact_match(prediction: str, references: Sequence[str] | str, language: str = "en") -> float:
    """1.0 if the prediction equals any reference after normalisation, else 0.0."""
    refs = _as_references(references)
    language = _resolve(language, refs)
    if language == "zh":
        return float(any("".join(cjk_tokenize(prediction)) == "".join(cjk_tokenize(r)) for r in refs))
    return float(any(normalize_answer(prediction) == normalize_answer(r) for r in refs))


def token_f1(prediction: str, references: Sequence[str] | str, language: str = "en") -> float:
    """The maximum over references of the token F1 (characters for ``zh``), in [0, 1]."""
    refs = _as_references(references)
    language = _resolve(language, refs)
    predicted = _tokens(prediction, language)
    return max(_f1(predicted, _tokens(r, language)) for r in refs)


def _reference_texts(references: Sequence[Any]) -> list[list[str]]:
    """Accept ``[[str, ...], ...]``, ``[str, ...]`` or QA answers ``[[{"text", ...}], ...]``."""
    result = []
    for index, item in enumerate(references):
        refs = [item] if isinstance(item, (str, dict)) else list(item)
        texts = [r["text"] if isinstance(r, dict) else r for r in refs]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise UserError(f"references[{index}] must be a non-empty list of answer strings, got {item!r:.80}")
        result.append(texts)
    return result


def _aligned_predictions(predictions: Any, count: int, ids: Sequence[str] | None) -> tuple[list[str], int]:
    """Predictions as a list aligned with the references, and how many ids had none (scored 0)."""
    if isinstance(predictions, Mapping):
        if ids is None:
            raise UserError("predictions are keyed by question id: pass ids=[...] in the order of the references")
        if len(ids) != count:
            raise UserError(f"got {len(ids)} ids for {count} questions; ids must align with the references")
        missing = sum(1 for i in ids if i not in predictions)
        return [str(predictions.get(i, "")) for i in ids], missing
    predicted = [str(p) for p in predictions]
    if len(predicted) != count:
        raise UserError(f"got {len(predicted)} predictions for {count} questions; they must align one to one")
    return predicted, 0


def question_scores(predictions: Sequence[str], references: Sequence[Any], language: str = "auto") -> dict[str, np.ndarray]:
    """Per-question ``exact_match`` and ``f1`` (each in [0, 1], max over references) as float arrays."""
    refs = _reference_texts(references)
    if len(predictions) != len(refs):
        raise UserError(f"got {len(predictions)} predictions for {len(refs)} questions; they must align one to one")
    language = _resolve(language, [t for texts in refs for t in texts])
    em = np.array([exact_match(p, r, language) for p, r in zip(predictions, refs, strict=True)], dtype=np.float64)
    f1 = np.array([token_f1(p, r, language) for p, r in zip(predictions, refs, strict=True)], dtype=np.float64)
    return {"exact_match": em, "f1": f1}


def squad_metrics(
    predictions: Sequence[str] | Mapping[str, str],
    references: Sequence[Any],
    ids: Sequence[str] | None = None,
    language: str = "auto",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Exact match and F1 over questions, in percent like the official script, with bootstrap CIs.

    Parameters
    ----------
    predictions : list of str, or dict of id -> str
        One answer text per question; a dict needs ``ids`` (the question ids in reference
        order).  A question with no entry in the dict scores 0 (as in the official script)
        and is counted in ``num_missing`` with a warning.
    references : list of list of str
        All reference answers of each question (``QAExamples.answers`` also works).
    language : {"auto", "en", "zh"}
        See the module docstring; ``auto`` decides once from all references.
    n_resamples, confidence, seed
        Percentile bootstrap over questions (:func:`bootstrap_mean_ci`).

    Returns
    -------
    dict
        ``exact_match``, ``f1`` (0-100), ``exact_match_ci``, ``f1_ci`` (``[low, high]``, 0-100),
        ``num_examples``, ``num_missing``, ``language``.
    """
    refs = _reference_texts(references)
    if not refs:
        raise UserError("no questions to evaluate")
    predicted, missing = _aligned_predictions(predictions, len(refs), ids)
    if missing:
        logger.warning("%d of %d questions have no prediction; they score 0", missing, len(refs))
    language = _resolve(language, [t for texts in refs for t in texts])
    scores = question_scores(predicted, refs, language)
    result: dict[str, Any] = {}
    for name, values in scores.items():
        result[name] = 100.0 * float(values.mean())
        result[f"{name}_ci"] = [100.0 * v for v in bootstrap_mean_ci(values, n_resamples, confidence, seed)]
    return {**result, "num_examples": len(refs), "num_missing": missing, "language": language}
