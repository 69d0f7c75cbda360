"""transferkit.evaluation.bootstrap and student_t: bootstrap CIs and the t interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from transferkit.core.errors import UserError
from transferkit.evaluation import (
    BOOTSTRAP_METRICS,
    bootstrap_ci,
    mean_ci,
    metrics_from_confusion,
    resample_indices,
    t_quantile,
)


def _predictions(seed: int, n: int, k: int, accuracy: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    wrong = rng.random(n) > accuracy
    pred = np.where(wrong, (y + rng.integers(1, k, size=n)) % k, y)
    return y, pred


def _reference_bootstrap(y: np.ndarray, pred: np.ndarray, k: int, n_resamples: int, confidence: float,
                         seed: int) -> dict[str, list[float]]:
    """Slow reference: a Python loop per resample, plain-Python counting and metrics."""
    rng = np.random.default_rng(seed)
    n = y.size
    index = np.minimum((rng.random((n_resamples, n)) * n).astype(np.int64), n - 1)
    values: dict[str, list[float]] = {name: [] for name in BOOTSTRAP_METRICS}
    for row in index:
        cm = [[0] * k for _ in range(k)]
        for i in row:
            cm[int(y[i])][int(pred[i])] += 1
        tp = [cm[c][c] for c in range(k)]
        predicted = [sum(cm[r][c] for r in range(k)) for c in range(k)]
        support = [sum(cm[c]) for c in range(k)]
        prec = [tp[c] / predicted[c] if predicted[c] else 0.0 for c in range(k)]
        rec = [tp[c] / support[c] if support[c] else 0.0 for c in range(k)]
        f1 = [2 * tp[c] / (predicted[c] + support[c]) if predicted[c] + support[c] else 0.0 for c in range(k)]
        values["accuracy"].append(sum(tp) / n)
        values["macro_precision"].append(sum(prec) / k)
        values["macro_recall"].append(sum(rec) / k)
        values["macro_f1"].append(sum(f1) / k)
    alpha = 1 - confidence
    return {name: list(np.quantile(v, [alpha / 2, 1 - alpha / 2])) for name, v in values.items()}


@pytest.mark.parametrize(("k", "seed", "chunk_size"), [(2, 0, None), (3, 1, 7), (5, 2, 1)])
def test_matches_slow_reference_loop(k: int, seed: int, chunk_size: int | None) -> None:
    y, pred = _predictions(seed, 40, k)
    fast = bootstrap_ci(y, pred, k, n_resamples=60, confidence=0.9, seed=seed, chunk_size=chunk_size)
    slow = _reference_bootstrap(y, pred, k, 60, 0.9, seed)
    assert set(fast) == set(BOOTSTRAP_METRICS)
    for name in BOOTSTRAP_METRICS:
        assert fast[name] == pytest.approx(slow[name], abs=1e-12, rel=0)


def test_resample_indices_independent_of_chunking() -> None:
    whole = np.concatenate(list(resample_indices(13, 50, seed=3, chunk_size=50)))
    for chunk in (1, 3, 7, 49):
        parts = list(resample_indices(13, 50, seed=3, chunk_size=chunk))
        assert all(p.shape[0] <= chunk for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert whole.shape == (50, 13) and whole.min() >= 0 and whole.max() <= 12


def test_resample_confusion_matrices_match_sklearn() -> None:
    y, pred = _predictions(4, 30, 3)
    index = next(resample_indices(30, 5, seed=0, chunk_size=5))
    for row in index:
        cm = skm.confusion_matrix(y[row], pred[row], labels=range(3))
        expected = skm.f1_score(y[row], pred[row], labels=range(3), average="macro", zero_division=0)
        assert metrics_from_confusion(cm)["macro_f1"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ci_contains_point_estimate(seed: int) -> None:
    y, pred = _predictions(seed, 500, 4)
    point = metrics_from_confusion(skm.confusion_matrix(y, pred, labels=range(4)))
    ci = bootstrap_ci(y, pred, 4, n_resamples=500, seed=seed)
    for name in BOOTSTRAP_METRICS:
        low, high = ci[name]
        assert low <= float(point[name]) <= high
        assert low < high


def test_ci_narrows_with_more_data() -> None:
    small = bootstrap_ci(*_predictions(0, 100, 3), 3, n_resamples=400)
    large = bootstrap_ci(*_predictions(0, 10_000, 3), 3, n_resamples=400)
    for name in BOOTSTRAP_METRICS:
        assert large[name][1] - large[name][0] < 0.5 * (small[name][1] - small[name][0])


def test_ci_widens_with_confidence() -> None:
    y, pred = _predictions(1, 300, 3)
    narrow = bootstrap_ci(y, pred, 3, confidence=0.5)
    wide = bootstrap_ci(y, pred, 3, confidence=0.99)
    assert wide["accuracy"][0] <= narrow["accuracy"][0] and narrow["accuracy"][1] <= wide["accuracy"][1]


def test_deterministic_for_seed_and_chunking() -> None:
    y, pred = _predictions(2, 200, 3)
    first = bootstrap_ci(y, pred, 3, n_resamples=300, seed=5)
    assert bootstrap_ci(y, pred, 3, n_resamples=300, seed=5) == first
    assert bootstrap_ci(y, pred, 3, n_resamples=300, seed=5, chunk_size=17) == first
    assert bootstrap_ci(y, pred, 3, n_resamples=300, seed=6) != first


def test_output_is_plain_floats() -> None:
    ci = bootstrap_ci(*_predictions(0, 50, 2), 2, n_resamples=20)
    assert all(type(v) is float and len(pair) == 2 for pair in ci.values() for v in pair)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"n_resamples": 0}, "n_resamples"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bootstrap_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"y_true": [0, 1, 1], "y_pred": [0, 1, 0], "num_classes": 2} | kwargs
    with pytest.raises(UserError, match=message):
        bootstrap_ci(**args)


def test_bootstrap_bad_labels() -> None:
    with pytest.raises(UserError, match="differ in length"):
        bootstrap_ci([0, 1], [0], 2)
    with pytest.raises(UserError, match="outside"):
        bootstrap_ci([0, 2], [0, 1], 2)
    with pytest.raises(UserError, match="no examples"):
        bootstrap_ci([], [], 2)


@pytest.mark.parametrize("df", range(1, 41))
@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_mean_ci_matches_scipy_t_interval(df: int, confidence: float) -> None:
    values = np.random.default_rng(df).normal(0.8, 0.05, size=df + 1)
    mean, low, high = mean_ci(values, confidence)
    sem = stats.sem(values)
    expected_low, expected_high = stats.t.interval(confidence, df, loc=values.mean(), scale=sem)
    assert mean == pytest.approx(values.mean(), abs=1e-12)
    assert low == pytest.approx(expected_low, abs=1e-3)
    assert high == pytest.approx(expected_high, abs=1e-3)


def test_t_quantile_is_exact_well_beyond_the_table() -> None:
    for df in [1, 2, 5, 30, 41, 100, 999, 1001, 10_000, 1e6]:
        for p in [0.6, 0.9, 0.975, 0.995, 0.9995, 0.025]:
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9)


def test_mean_ci_edge_cases() -> None:
    mean, low, high = mean_ci([0.7])
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(UserError, match="at least one"):
        mean_ci([])
    with pytest.raises(UserError, match="NaN"):
        mean_ci([0.5, float("nan")])
    with pytest.raises(UserError, match="confidence"):
        mean_ci([0.5, 0.6], confidence=1.5)
