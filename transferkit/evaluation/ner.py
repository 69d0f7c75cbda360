"""Entity-level NER metrics (via ``seqeval``) and their bootstrap confidence interval.

An entity is a ``(sentence, type, start, end)`` span; a predicted entity is correct only
when all four match a gold entity.  With ``TP`` correct, ``P`` predicted and ``G`` gold
entities (summed over sentences, micro average)::

    precision = TP / P        recall = TP / G        F1 = 2 TP / (P + G)

and a zero denominator gives ``0.0``.  Two span readings are reported:

* **strict IOB2** (the headline numbers; seqeval ``mode="strict", scheme=IOB2``): an
  entity is ``B-X`` followed by ``I-X`` tags; an ``I-X`` that continues no ``X`` entity
  starts nothing;
* **conlleval** (seqeval's default mode, a port of the CoNLL ``conlleval`` script): such
  an ``I-X`` starts an entity, as in IOB1.

Both agree on valid IOB2 tags; they differ on the invalid sequences models emit.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import chain

import numpy as np
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support
from seqeval.scheme import IOB2, Entities

from transferkit.core.errors import UserError
from transferkit.evaluation.bootstrap import CHUNK_ELEMENTS, check_confidence, resample_indices

__all__ = ["entity_f1_ci", "entity_metrics"]

_IOB2_TAG = re.compile(r"O|[BI]-.+")


def _check(references: list[list[str]], predictions: list[list[str]]) -> None:
    """Same number of sentences, same length per sentence, only ``O``/``B-X``/``I-X`` tags."""
    if len(references) != len(predictions):
        raise UserError(f"{len(references)} reference sentences but {len(predictions)} predicted ones")
    if not references:
        raise UserError("no sentences to evaluate")
    for index, (gold, guess) in enumerate(zip(references, predictions, strict=True)):
        if len(gold) != len(guess):
            raise UserError(f"sentence {index}: {len(gold)} reference tags but {len(guess)} predicted tags")
    tags = set(chain.from_iterable(references)) | set(chain.from_iterable(predictions))
    bad = sorted(str(tag) for tag in tags if not (isinstance(tag, str) and _IOB2_TAG.fullmatch(tag)))
    if bad:
        raise UserError(f"tags {bad[:5]} are not IOB2 (O, B-TYPE, I-TYPE); convert them first (e.g. from_bioes)")


def _strict_entities(references: list[list[str]], predictions: list[list[str]]) -> tuple[list[set], list[set]]:
    """Per sentence, the strict IOB2 entities ``(sentence, type, start, end)`` of gold and prediction."""
    gold = [{entity.to_tuple() for entity in sentence} for sentence in Entities(references, IOB2).entities]
    guess = [{entity.to_tuple() for entity in sentence} for sentence in Entities(predictions, IOB2).entities]
    return gold, guess


def _ratios(correct: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall, F1 from counts (any shape), ``0.0`` where a denominator is zero."""
    correct, predicted, gold = (np.asarray(x, dtype=np.float64) for x in (correct, predicted, gold))

    def divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)

    return divide(correct, predicted), divide(correct, gold), divide(2.0 * correct, predicted + gold)


def _scores(correct: int, predicted: int, gold: int) -> dict[str, float]:
    precision, recall, f1 = _ratios(np.array(correct), np.array(predicted), np.array(gold))
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def entity_metrics(references: list[list[str]], predictions: list[list[str]]) -> dict:
    """Entity-level precision/recall/F1, overall and per type, plus token accuracy.

    Parameters
    ----------
    references, predictions : list of list of str
        IOB2 tags, one list per sentence, aligned token by token.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1`` (strict IOB2, micro over all entities);
        ``per_type`` ``{type: {precision, recall, f1, support}}`` (strict; ``support`` =
        gold entities of the type; types found in either side); ``conlleval``
        ``{precision, recall, f1}`` (seqeval's default mode, which reproduces conlleval);
        ``token_accuracy`` (share of tokens whose tag is right, ``O`` included) and the
        counts ``num_sentences``, ``num_gold``, ``num_predicted``, ``num_correct`` (strict).
    """
    _check(references, predictions)
    gold, guess = _strict_entities(references, predictions)
    correct = [g & p for g, p in zip(gold, guess, strict=True)]
    counts = [Counter(entity[1] for entity in chain.from_iterable(side)) for side in (correct, guess, gold)]
    types = sorted(set(counts[1]) | set(counts[2]))
    per_type = {kind: {**_scores(counts[0][kind], counts[1][kind], counts[2][kind]), "support": counts[2][kind]}
                for kind in types}
    totals = [sum(count.values()) for count in counts]
    precision, recall, f1, _ = precision_recall_fscore_support(references, predictions, average="micro",
                                                               zero_division=0)
    tokens = sum(map(len, references))
    right = sum(g == p for gold_tags, guess_tags in zip(references, predictions, strict=True)
                for g, p in zip(gold_tags, guess_tags, strict=True))
    return {
        **_scores(*totals),
        "per_type": per_type,
        "conlleval": {"precision": float(precision), "recall": float(recall), "f1": float(f1)},
        "token_accuracy": right / tokens if tokens else 0.0,
        "num_sentences": len(references),
        "num_gold": totals[2],
        "num_predicted": totals[1],
        "num_correct": totals[0],
    }


def entity_f1_ci(
    references: list[list[str]],
    predictions: list[list[str]],
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile bootstrap interval of strict entity precision, recall and F1 over sentences.

    Sentence ``s`` contributes counts ``(TP_s, P_s, G_s)`` (correct, predicted and gold
    strict IOB2 entities).  Each of ``R`` resamples draws ``n`` sentences with replacement
    (:func:`~transferkit.evaluation.bootstrap.resample_indices`, same index stream as
    ``bootstrap_ci``), sums the counts and takes ``F1 = 2 TP / (P + G)`` (micro, as in
    :func:`entity_metrics`); the interval is ``[q_{alpha/2}, q_{1-alpha/2}]`` of the ``R``
    values, ``alpha = 1 - confidence``.  Entities are extracted once; resampling is numpy.

    Returns
    -------
    dict of str to list of float
        ``{"precision": [low, high], "recall": [low, high], "f1": [low, high]}``.
    """
    confidence = check_confidence(confidence)
    if int(n_resamples) < 1:
        raise UserError(f"n_resamples must be >= 1, got {n_resamples}")
    _check(references, predictions)
    gold, guess = _strict_entities(references, predictions)
    counts = np.array([(len(g & p), len(p), len(g)) for g, p in zip(gold, guess, strict=True)], dtype=np.int64)
    n = len(counts)
    rows = max(1, CHUNK_ELEMENTS // n)
    chunks = resample_indices(n, int(n_resamples), seed, rows)
    sums = np.concatenate([np.stack([column[index].sum(axis=1) for column in counts.T], axis=1) for index in chunks])
    alpha = 1.0 - confidence
    result = {}
    for name, values in zip(("precision", "recall", "f1"), _ratios(sums[:, 0], sums[:, 1], sums[:, 2]), strict=True):
        low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
        result[name] = [float(low), float(high)]
    return result
