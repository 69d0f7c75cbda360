"""transferkit.evaluation.transferability: known answers, invariances, input checks, parity with tllib."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from transferkit.core.errors import UserError
from transferkit.evaluation import transferability
from transferkit.evaluation.transferability import (
    ESTIMATORS,
    LayerScore,
    estimator,
    hscore,
    hscore_shrink,
    knn,
    leep,
    linear,
    logme,
    nce,
    score_layers,
)

FEATURE_ESTIMATORS = [name for name, e in ESTIMATORS.items() if e.needs == "features"]


# ------------------------------------------------------------------------------------------------------------------
# Reference: tllib (thuml/Transfer-Learning-Library, MIT licence), tllib/ranking/logme.py and hscore.py at commit
# c4aa59eb565650a552b809411601d0589efbbfe4, copied verbatim except that numba's @njit is dropped (numba is not a
# dependency; the arithmetic is the same in plain numpy).
def tllib_log_maximum_evidence(features: np.ndarray, targets: np.ndarray, regression=False, return_weights=False):
    f = features.astype(np.float64)
    y = targets
    if regression:
        y = targets.astype(np.float64)

    fh = f
    f = f.transpose()
    D, N = f.shape
    v, s, vh = np.linalg.svd(f @ fh, full_matrices=True)

    evidences = []
    weights = []
    if regression:
        C = y.shape[1]
        for i in range(C):
            y_ = y[:, i]
            evidence, weight = tllib_each_evidence(y_, f, fh, v, s, vh, N, D)
            evidences.append(evidence)
            weights.append(weight)
    else:
        C = int(y.max() + 1)
        for i in range(C):
            y_ = (y == i).astype(np.float64)
            evidence, weight = tllib_each_evidence(y_, f, fh, v, s, vh, N, D)
            evidences.append(evidence)
            weights.append(weight)

    score = np.mean(evidences)
    weights = np.vstack(weights)

    if return_weights:
        return score, weights
    else:
        return score


def tllib_each_evidence(y_, f, fh, v, s, vh, N, D):
    alpha = 1.0
    beta = 1.0
    lam = alpha / beta
    tmp = (vh @ (f @ y_))

    for _ in range(11):
        # should converge after at most 10 steps
        # typically converge after two or three steps
        gamma = (s / (s + lam)).sum()
        m = v @ (tmp * beta / (alpha + beta * s))
        alpha_de = (m * m).sum()
        alpha = gamma / alpha_de
        beta_de = ((y_ - fh @ m) ** 2).sum()
        beta = (N - gamma) / beta_de
        new_lam = alpha / beta
        if np.abs(new_lam - lam) / lam < 0.01:
            break
        lam = new_lam

    evidence = D / 2.0 * np.log(alpha) \
               + N / 2.0 * np.log(beta) \
               - 0.5 * np.sum(np.log(alpha + beta * s)) \
               - beta / 2.0 * beta_de \
               - alpha / 2.0 * alpha_de \
               - N / 2.0 * np.log(2 * np.pi)

    return evidence / N, m


def tllib_h_score(features: np.ndarray, labels: np.ndarray):
    f = features
    y = labels

    covf = np.cov(f, rowvar=False)
    C = int(y.max() + 1)
    g = np.zeros_like(f)

    for i in range(C):
        Ef_i = np.mean(f[y == i, :], axis=0)
        g[y == i] = Ef_i

    covg = np.cov(g, rowvar=False)
    score = np.trace(np.dot(np.linalg.pinv(covf, rcond=1e-15), covg))

    return score


def tllib_regularized_h_score(features: np.ndarray, labels: np.ndarray):
    f = features.astype('float64')
    f = f - np.mean(f, axis=0, keepdims=True)  # Center the features for correct Ledoit-Wolf Estimation
    y = labels

    C = int(y.max() + 1)
    g = np.zeros_like(f)

    cov = LedoitWolf(assume_centered=False).fit(f)
    alpha = cov.shrinkage_
    covf_alpha = cov.covariance_

    for i in range(C):
        Ef_i = np.mean(f[y == i, :], axis=0)
        g[y == i] = Ef_i

    covg = np.cov(g, rowvar=False)
    score = np.trace(np.dot(np.linalg.pinv(covf_alpha, rcond=1e-15), (1 - alpha) * covg))

    return score
# ------------------------------------------------------------------------------------------------------------------


def _task(n: int, d: int, classes: int, signal: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features with the class shifted by ``signal`` along its own axis; every class present."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    return rng.normal(size=(n, d)) + signal * np.eye(classes, d)[labels], labels


# ------------------------------------------------------------------------------------------------- LogME
@pytest.mark.parametrize(("n", "d"), [(200, 16), (60, 60), (40, 90)])
def test_logme_with_tllibs_stopping_rule_matches_tllib(n: int, d: int) -> None:
    features, labels = _task(n, d, 4, 0.8, seed=n)
    expected = tllib_log_maximum_evidence(features, labels)
    assert logme(features, labels, tol=0.01, max_iter=11) == pytest.approx(expected, rel=1e-6)


def test_logme_run_to_convergence_stays_close_to_tllib_when_n_exceeds_d() -> None:
    features, labels = _task(300, 16, 3, 0.8, seed=1)
    assert logme(features, labels) == pytest.approx(tllib_log_maximum_evidence(features, labels), rel=1e-4)


@pytest.mark.parametrize(("n", "d"), [(200, 16), (40, 90)])
@pytest.mark.parametrize("scale", [1000.0, 1e-3])
def test_logme_is_invariant_to_rescaling_and_rotating_the_features(n: int, d: int, scale: float) -> None:
    # F → cF, α → c²α leaves the evidence of every (α, β) unchanged, so its maximum cannot move; likewise F → FQ.
    features, labels = _task(n, d, 3, 0.8, seed=2)
    rotation = np.linalg.qr(np.random.default_rng(3).normal(size=(d, d)))[0]
    reference = logme(features, labels)
    assert logme(scale * features, labels) == pytest.approx(reference, rel=1e-6)
    assert logme(features @ rotation, labels) == pytest.approx(reference, rel=1e-6)


def test_tllibs_early_stop_is_what_breaks_scale_invariance() -> None:
    # With n < d and features ×1000, eleven iterations from α = β = 1 stop far from the maximum: tllib's number moves
    # by percents or turns NaN (n − γ < 0 from FᵀF's rounding-noise eigenvalues); the maximised evidence does not.
    # Hence the default runs the fixed point to convergence.
    features, labels = _task(40, 90, 3, 0.8, seed=2)
    with np.errstate(invalid="ignore"):
        early = tllib_log_maximum_evidence(features, labels), tllib_log_maximum_evidence(1000 * features, labels)
    assert not np.isclose(early[1], early[0], rtol=1e-2)
    assert logme(1000 * features, labels) == pytest.approx(logme(features, labels), rel=1e-6)


def test_logme_stays_finite_at_the_evidence_limits() -> None:
    labels = np.arange(30) % 3
    perfect = np.eye(3)[labels]  # y_c lies in span(F): β → ∞
    useless = np.random.default_rng(0).normal(size=(30, 2))  # w = 0 is best for some class: α → ∞
    wide = np.random.default_rng(1).normal(size=(30, 200))  # n < d: the targets can be interpolated
    for features in (perfect, useless, wide):
        assert math.isfinite(logme(features, labels))
    assert logme(perfect, labels) > logme(useless, labels)


def test_logme_accepts_any_integer_class_ids() -> None:
    features, labels = _task(90, 8, 3, 0.8, seed=4)
    assert logme(features, labels * 7 + 100) == pytest.approx(logme(features, labels), rel=1e-12)


# ------------------------------------------------------------------------------------------------- H-scores
def test_hscore_one_dimension_by_hand() -> None:
    # f = 0, 2, 4, 6 with labels 0, 0, 1, 1: mean 3; total Σ(f − 3)² = 9 + 1 + 1 + 9 = 20; class means 1 and 5,
    # between Σ n_c (μ_c − 3)² = 2·4 + 2·4 = 16 (same 1/(n − 1) on both), so H = 16 / 20 = 0.8.
    assert hscore(np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1])) == pytest.approx(0.8, rel=1e-12)


def test_hscore_saturates_at_classes_minus_one_when_dimensions_outnumber_examples() -> None:
    # With n − 1 ≤ d generic features, the centred features span every centred vector, so H = Σ_c ‖P 1_c‖² / n_c
    # = Σ_c (n_c − n_c²/n) / n_c = C − 1 for any labels at all: the degeneracy that shrinkage removes.
    features = np.random.default_rng(15).normal(size=(30, 50))
    labels = np.arange(30) % 3
    assert hscore(features, labels) == pytest.approx(2.0, rel=1e-8)
    assert hscore_shrink(features, labels) < 1.0


def test_hscore_matches_tllib_when_the_covariance_is_full_rank() -> None:
    features, labels = _task(150, 12, 4, 0.7, seed=5)
    assert hscore(features, labels) == pytest.approx(tllib_h_score(features, labels), rel=1e-8)


@pytest.mark.parametrize(("n", "d"), [(150, 12), (30, 50)])
def test_hscore_shrink_matches_tllib_and_sklearns_ledoit_wolf(n: int, d: int) -> None:
    features, labels = _task(n, d, 3, 0.7, seed=6)
    assert hscore_shrink(features, labels) == pytest.approx(tllib_regularized_h_score(features, labels), rel=1e-8)
    centred = features - features.mean(axis=0)
    gram = centred.T @ centred if n >= d else centred @ centred.T
    shrinkage = transferability._ledoit_wolf_shrinkage(centred, np.linalg.eigvalsh(gram))
    assert shrinkage == pytest.approx(LedoitWolf().fit(features).shrinkage_, rel=1e-8)


def test_hscore_shrink_needs_no_shrinkage_in_one_dimension() -> None:
    # d = 1: Σ_α = S for every α (Ledoit-Wolf gives 0), so the shrinkage H-score is the H-score up to n/(n − 1).
    features, labels = np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1])
    assert hscore_shrink(features, labels) == pytest.approx(0.8 * 4 / 3, rel=1e-12)


# ------------------------------------------------------------------------------------------------- probes
def _brute_force_knn(features: np.ndarray, labels: np.ndarray, fold: np.ndarray, k: int) -> float:
    """One example at a time: cosine similarity, k nearest, most votes, ties to the class met first."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    correct = 0
    for i in range(len(labels)):
        train = np.flatnonzero(fold != fold[i])
        ranked = train[np.argsort(-(unit[train] @ unit[i]), kind="stable")][:k]
        votes: dict[int, int] = {}
        for j in ranked:
            votes[int(labels[j])] = votes.get(int(labels[j]), 0) + 1
        best = max(votes.values())
        correct += next(int(labels[j]) for j in ranked if votes[int(labels[j])] == best) == labels[i]
    return correct / len(labels)


@pytest.mark.parametrize("k", [1, 4, 5])
def test_knn_equals_the_written_out_rule(k: int) -> None:
    features, labels = _task(90, 5, 3, 1.0, seed=7)
    fold = transferability._stratified_folds(labels, 5, 0)
    assert knn(features, labels, k=k) == pytest.approx(_brute_force_knn(features, labels, fold, k))


def test_knn_tie_goes_to_the_class_with_the_nearest_member() -> None:
    train = np.array([[1.0, 0.0], [0.0, 1.0]])
    query = np.array([[0.6, 0.8], [0.8, 0.6]])  # nearer to class 1's member, then to class 0's
    predicted = transferability._knn_predict(train, np.array([0, 1]), query, k=2, classes=2)
    assert predicted.tolist() == [1, 0]


def test_folds_shrink_to_the_smallest_class_but_not_below_two() -> None:
    labels = np.array([0] * 3 + [1] * 10)
    fold = transferability._stratified_folds(labels, 5, 0)
    assert sorted(set(fold[labels == 0])) == [0, 1, 2] and fold.max() == 2
    singleton = np.array([0] + [1] * 6)
    assert transferability._stratified_folds(singleton, 5, 0).max() == 1
    assert 0.0 <= knn(np.random.default_rng(0).normal(size=(7, 3)), singleton) <= 1.0


def test_linear_equals_a_scikit_learn_pipeline_on_the_same_folds() -> None:
    features, labels = _task(80, 6, 3, 0.6, seed=8)
    fold = transferability._stratified_folds(labels, 4, 1)
    correct = 0
    for held_out in range(4):
        train, test = fold != held_out, fold == held_out
        scaler = StandardScaler().fit(features[train])
        probe = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(features[train]), labels[train])
        correct += int((probe.predict(scaler.transform(features[test])) == labels[test]).sum())
    assert linear(features, labels, folds=4, seed=1) == pytest.approx(correct / 80)


# ------------------------------------------------------------------------------------------------- all feature scores
@pytest.mark.parametrize("name", FEATURE_ESTIMATORS)
def test_label_aligned_features_beat_noise(name: str) -> None:
    rng = np.random.default_rng(9)
    labels = np.arange(120) % 4
    aligned = np.eye(4, 16)[labels] + 0.1 * rng.normal(size=(120, 16))
    noise = rng.normal(size=(120, 16))
    assert estimator(name)(aligned, labels) > estimator(name)(noise, labels)


# ------------------------------------------------------------------------------------------------- NCE and LEEP
def test_nce_and_leep_by_hand() -> None:
    labels = np.array([0, 0, 1, 1])
    # NCE with source classes z = 0, 0, 0, 1: P(y=0, z=0) = 2/4, P(y=1, z=0) = 1/4, P(y=1, z=1) = 1/4 and
    # P(z=0) = 3/4, P(z=1) = 1/4, so NCE = Σ P(y,z) log P(y|z) = ½ log(2/3) + ¼ log(1/3) + ¼ log 1 ≈ −0.477386.
    assert nce(np.array([0, 0, 0, 1]), labels) == pytest.approx(0.5 * math.log(2 / 3) + 0.25 * math.log(1 / 3))
    # LEEP with θ = [1, 0], [1, 0], [½, ½], [0, 1]: n·P(y, z) = [[2, 0], [½, 3/2]], n·P(z) = [5/2, 3/2], so
    # P(y|z=0) = (0.8, 0.2) and P(y|z=1) = (0, 1).  Per example Σ_z P(y_i|z) θ_iz = 0.8, 0.8, ½·0.2 + ½·1 = 0.6, 1,
    # and LEEP = (2 log 0.8 + log 0.6 + log 1) / 4 ≈ −0.239278.
    theta = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    assert leep(theta, labels) == pytest.approx((2 * math.log(0.8) + math.log(0.6)) / 4)


def test_leep_of_one_hot_predictions_is_nce_and_both_are_at_most_zero() -> None:
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 3, size=50)
    logits = rng.normal(size=(50, 6))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    hard = np.eye(6)[probabilities.argmax(axis=1)]
    assert leep(hard, labels) == pytest.approx(nce(probabilities, labels))
    assert nce(probabilities, labels) == nce(probabilities.argmax(axis=1), labels)
    assert -math.log(3) <= nce(probabilities, labels) <= 0 and leep(probabilities, labels) <= 0


def test_a_relabelling_or_refinement_of_the_target_scores_zero() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2, 2])
    assert nce(np.array([2, 0, 1])[labels], labels) == 0.0  # a permutation of the classes
    assert nce(2 * labels + np.arange(7) % 2, labels) == 0.0  # each source class inside one target class
    assert leep(np.eye(3)[np.array([2, 0, 1])[labels]], labels) == 0.0


# ------------------------------------------------------------------------------------------------- layers
def test_score_layers_best_last_and_mean() -> None:
    informative, labels = _task(90, 6, 3, 3.0, seed=11)
    rng = np.random.default_rng(12)
    layers = [rng.normal(size=(90, 6)), informative, rng.normal(size=(90, 6))]
    best = score_layers("logme", layers, labels, how="best")
    assert best.layer == 1 and best.score == logme(informative, labels) and len(best.per_layer) == 3
    assert best.per_layer == tuple(logme(layer, labels) for layer in layers)
    assert score_layers("logme", layers, labels, how="last") == LayerScore(logme(layers[2], labels), 2, None)
    mean = score_layers("logme", layers, labels, how="mean")
    assert mean == LayerScore(logme((layers[0] + layers[1] + layers[2]) / 3, labels), None, None)


def test_one_layer_gives_one_score_however_aggregated() -> None:
    features, labels = _task(60, 4, 2, 1.0, seed=13)
    scores = {how: score_layers("hscore", [features], labels, how=how).score for how in ("last", "mean", "best")}
    assert len(set(scores.values())) == 1


def test_score_layers_mistakes_are_user_errors() -> None:
    features, labels = _task(30, 4, 2, 1.0, seed=14)
    with pytest.raises(UserError, match="unknown layer aggregation 'max'; valid: best, last, mean"):
        score_layers("logme", [features], labels, how="max")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="feature estimator"):
        score_layers("leep", [features], labels)
    with pytest.raises(UserError, match="one shape"):
        score_layers("logme", [features, features[:, :3]], labels, how="mean")


# ------------------------------------------------------------------------------------------------- registry, checks
def test_registry_names_and_unknown_name() -> None:
    assert set(ESTIMATORS) == {"logme", "hscore", "hscore_shrink", "knn", "linear", "nce", "leep"}
    assert {e.name for e in ESTIMATORS.values() if e.needs == "source_predictions"} == {"nce", "leep"}
    assert estimator("leep").score is leep
    with pytest.raises(UserError, match="unknown transferability estimator 'logmee'.*did you mean 'logme'.*valid: "
                                        "hscore, hscore_shrink, knn, leep, linear, logme, nce"):
        estimator("logmee")


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_a_single_class_is_a_user_error(name: str) -> None:
    inputs = np.full((6, 2), 0.5) if name in ("nce", "leep") else np.random.default_rng(0).normal(size=(6, 2))
    with pytest.raises(UserError, match="needs at least two classes; got only class 3"):
        estimator(name)(inputs, np.full(6, 3))


@pytest.mark.parametrize(("features", "labels", "message"), [
    (np.ones((5, 2)), np.arange(4) % 2, "5 examples but 4 labels"),
    (np.ones(5), np.arange(5) % 2, "2-D"),
    (np.ones((1, 3)), np.array([0]), "at least 2 examples"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), np.array([0, 1]), "NaN or infinite"),
    (np.ones((4, 2)), np.array([0.5, 1, 0, 1]), "integer class ids"),
])
def test_bad_inputs_are_one_line_user_errors(features: np.ndarray, labels: np.ndarray, message: str) -> None:
    for name in FEATURE_ESTIMATORS:
        with pytest.raises(UserError, match=message) as caught:
            estimator(name)(features, labels)
        assert "\n" not in str(caught.value)


def test_leep_rejects_logits() -> None:
    with pytest.raises(UserError, match="softmax"):
        leep(np.array([[2.0, -1.0], [0.5, 0.3]]), np.array([0, 1]))
