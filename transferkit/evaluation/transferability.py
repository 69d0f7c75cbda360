"""Transferability estimators: how well frozen features suit a target task, without fine-tuning.

Each estimator scores ``features`` (n, d) of one candidate source model (for NCE and LEEP: that model's
source-class predictions) against target ``labels`` (n,) of integer class ids; higher is better for all, so
candidates rank by ``sorted(..., reverse=True)``.  Pure functions over numpy arrays (float64 inside), like
tllib's ``tllib.ranking``; ``ESTIMATORS`` names them with their papers: LogME (You et al. 2021), H-score (Bao
et al. 2019), shrinkage H-score (Ibrahim et al. 2022), cross-validated k-NN and linear-probe accuracy, NCE
(Tran et al. 2019) and LEEP (Nguyen et al. 2020).  ``score_layers`` scores several hidden layers of one model:
the last, the best, or the element-wise mean of all of them (Garbaciauskas et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from transferkit.core.errors import UserError, unknown_name

EPS = float(np.finfo(np.float64).eps)
KNN_CHUNK_ROWS = 1024  # test rows per similarity block in knn: bounds the (rows, n_train) matrix


def _features(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2:
        raise UserError(f"features must be a 2-D (examples, dim) array, got shape {x.shape}; stack the vectors first")
    if x.shape[0] < 2:
        raise UserError(f"scoring transferability needs at least 2 examples, got {x.shape[0]}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise UserError("features contain NaN or infinite values; check the model's outputs (fp16 overflow?)")
    if not x.any():
        raise UserError("features are all zero; check that the model's hidden states were captured")
    return x


def _labels(labels: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Class codes 0..C-1 (in sorted order of the given ids) and C; the given ids may be any integers."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise UserError(f"labels must be a 1-D array of class ids, got shape {y.shape}")
    if y.size != n:
        raise UserError(f"{n} examples but {y.size} labels; pass exactly one label per example")
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all()):
        raise UserError(f"labels must be integer class ids, got dtype {y.dtype}; map class names to 0..C-1 first")
    classes, codes = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise UserError(f"needs at least two classes; got only class {classes[0].item()}: add examples of other classes")
    return codes.reshape(-1), int(classes.size)


def logme(features: np.ndarray, labels: np.ndarray, *, tol: float = 1e-8, max_iter: int = 10_000) -> float:
    """LogME: the mean over classes of the maximised log-evidence per example of a Bayesian linear model.

    You et al. 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning" (ICML).  Per class,
    one-hot target ``y = Fw + ε`` with ``w ~ N(0, α⁻¹I_d)``, ``ε ~ N(0, β⁻¹I_n)``; with ``σ_i`` the eigenvalues of
    ``FᵀF`` (from one eigendecomposition of ``FᵀF``, or of ``FFᵀ`` when n < d), MacKay's fixed point::

        γ = Σ_i βσ_i/(α + βσ_i)    m = β(αI + βFᵀF)⁻¹Fᵀy    α ← γ/mᵀm    β ← (n − γ)/‖Fm − y‖²

    runs from ``α = β = 1`` until ``λ = α/β`` moves by less than ``tol`` (relative); the score is the mean of
    ``L/n``, ``L = d/2 log α + n/2 log β − ½Σ_i log(α + βσ_i) − β/2‖Fm − y‖² − α/2 mᵀm − n/2 log 2π``.  The maximum
    is invariant to rescaling ``F`` (α absorbs it).  ``tol=0.01, max_iter=11`` is tllib's ``log_maximum_evidence``
    (MIT) to ~1e-12, whose early stop is not invariant.  Each iteration costs O(min(n, d)·C).

    >>> labels, rng = np.repeat([0, 1, 2], 20), np.random.default_rng(0)
    >>> aligned = np.eye(3)[labels] + 0.3 * rng.normal(size=(60, 3))
    >>> bool(logme(aligned, labels) > logme(rng.normal(size=(60, 3)), labels))
    True
    """
    x = _features(features)
    codes, classes = _labels(labels, x.shape[0])
    spectrum, projections, outside = _logme_spectrum(x, np.eye(classes)[codes])
    return float(np.mean(_max_evidence(spectrum, projections, outside, x.shape[0], tol, max_iter)))


def _logme_spectrum(x: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """σ (r,) eigenvalues of FᵀF (r = min(n, d); rounding noise below σ_max·max(n, d)·eps set to 0), z² (r, C)
    the targets' squared coordinates on the left singular vectors, ‖y − Py‖² (C,) outside F's column space."""
    n, d = x.shape
    gram = x.T @ x if n >= d else x @ x.T  # (r, r): FᵀF, or FFᵀ with the same nonzero eigenvalues
    sigma, vectors = np.linalg.eigh(gram)
    keep = sigma > max(sigma.max(), 0.0) * max(n, d) * EPS
    sigma = np.where(keep, sigma, 0.0)
    if n >= d:
        projected = vectors[:, keep].T @ (x.T @ targets)  # (k, C) = σ^½ uᵀy
        coordinates = projected / np.sqrt(sigma[keep, None])
        inside = x @ (vectors[:, keep] @ (projected / sigma[keep, None]))  # P y, (n, C)
    else:
        coordinates = vectors[:, keep].T @ targets  # (k, C) = uᵀy
        inside = vectors[:, keep] @ coordinates
    coordinates2 = np.zeros((sigma.size, targets.shape[1]))
    coordinates2[keep] = coordinates**2
    return sigma, coordinates2, ((targets - inside) ** 2).sum(axis=0)  # direct, so no cancellation near a perfect fit


def _max_evidence(sigma: np.ndarray, coordinates2: np.ndarray, outside: np.ndarray, n: int, tol: float,
                  max_iter: int) -> np.ndarray:
    """tllib's fixed-point loop for all classes at once; log-evidence / n per class (C,).  λ = α/β stays within
    [σ_min/1e10, σ_max·1e10]: the evidence may peak at λ → ∞ (w = 0) or λ → 0 (n ≤ d, targets interpolated), with
    finite limits that these bounds reach to ~1e-10, instead of α or β overflowing."""
    low, high = sigma[sigma > 0].min() / 1e10, sigma.max() * 1e10
    sigma = sigma[:, None]  # (r, 1)
    alpha, beta, lam = (np.ones(coordinates2.shape[1]) for _ in range(3))
    m2, residual2 = np.zeros_like(alpha), np.zeros_like(alpha)
    active = np.arange(alpha.size)  # a class stops updating at its own convergence, as in tllib's loop per class
    for _ in range(max_iter):
        a, b, z2 = alpha[active], beta[active], coordinates2[:, active]
        gain, ridge = b / (a + b * sigma), a / (a + b * sigma)  # (r, k): m = V diag(gain) Fᵀy; ridge = 1 − σ·gain
        m2[active] = (sigma * z2 * gain**2).sum(axis=0)  # mᵀm
        residual2[active] = outside[active] + (z2 * ridge**2).sum(axis=0)  # ‖Fm − y‖²
        with np.errstate(divide="ignore"):
            a = (sigma * gain).sum(axis=0) / m2[active]  # γ / mᵀm
            b = (n - sigma.shape[0] + ridge.sum(axis=0)) / residual2[active]  # (n − γ) / ‖Fm − y‖², no cancellation
        a, b = np.minimum(a, b * high), np.minimum(b, a / low)
        alpha[active], beta[active] = a, b
        converged = np.abs(a / b - lam[active]) / lam[active] < tol
        lam[active] = np.where(converged, lam[active], a / b)
        active = active[~converged]
        if active.size == 0:
            break
    # d log α − log det(αI + βFᵀF) = −Σ_i log(1 + βσ_i/α): the d − r zero eigenvalues cancel exactly
    evidence = (n * np.log(beta) - np.log1p(beta * sigma / alpha).sum(axis=0) - beta * residual2 - alpha * m2
                - n * np.log(2 * np.pi)) / 2
    return evidence / n


def _class_mean_spectrum(x: np.ndarray, codes: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """For centred F: λ (r,) eigenvalues of FᵀF and b (r,) = Σ_c n_c (vᵀμ_c)² on the same eigenvectors v,
    where μ_c is class c's mean; from FFᵀ when n < d (then vᵀμ_c = √λ uᵀ1_c / n_c)."""
    onehot = np.eye(classes)[codes]  # (n, C)
    counts = onehot.sum(axis=0)
    lam, vectors = np.linalg.eigh(x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T)
    lam = np.clip(lam, 0.0, None)
    if x.shape[0] >= x.shape[1]:
        return lam, (((onehot.T @ x) @ vectors) ** 2 / counts[:, None]).sum(axis=0)
    return lam, lam * ((vectors.T @ onehot) ** 2 / counts).sum(axis=1)


def hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """H-score ``H = tr(cov(f)⁺ cov(E[f|y]))`` (pseudo-inverse), features centred.

    Bao et al. 2019, "An information-theoretic approach to transferability in task transfer learning" (ICIP).
    In the eigenbasis of ``cov(f)`` this is ``Σ_i b_i / λ_i`` with ``b_i = Σ_c n_c (v_iᵀμ_c)²`` (the
    normalisations cancel); eigenvalues below ``λ_max · max(n, d) · eps`` are rounding noise and dropped, as
    a pseudo-inverse does.  In one dimension it is the correlation ratio between- over total variance.

    >>> bool(np.isclose(hscore(np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1])), 0.8))
    True
    """
    x = _features(features)
    codes, classes = _labels(labels, x.shape[0])
    x = x - x.mean(axis=0)
    lam, between = _class_mean_spectrum(x, codes, classes)
    keep = lam > lam.max() * max(x.shape) * EPS
    return float((between[keep] / lam[keep]).sum())


def _ledoit_wolf_shrinkage(x: np.ndarray, lam: np.ndarray) -> float:
    """Ledoit & Wolf (2004) shrinkage ``α`` for centred ``x`` (n, d) with ``lam`` the eigenvalues of ``xᵀx``, as
    scikit-learn computes it.  With ``S = xᵀx/n``, ``μ = tr(S)/d``, ``δ = ‖S − μI‖²_F / d`` and
    ``β = (Σ_i ‖x_i‖⁴/n − ‖S‖²_F) / (d n)``: ``α = min(β, δ) / δ`` (0 when that is 0)."""
    n, d = x.shape
    mu, frobenius2 = lam.sum() / (n * d), (lam**2).sum() / n**2
    delta = (frobenius2 - d * mu**2) / d
    beta = min((((x**2).sum(axis=1) ** 2).sum() / n - frobenius2) / (d * n), delta)
    return 0.0 if beta <= 0 else float(beta / delta)


def hscore_shrink(features: np.ndarray, labels: np.ndarray) -> float:
    """Shrinkage H-score ``H_α = tr(Σ_α⁻¹ (1 − α) cov(E[f|y]))`` with the Ledoit-Wolf estimate ``Σ_α``.

    Ibrahim, Ponomareva, Chen 2022, "Newer is not always better: Rethinking transferability metrics, their
    peculiarities, stability and performance" (ECML-PKDD): ``Σ_α = (1 − α)S + αμI``, ``S`` the covariance of the
    centred features (over n), ``μ = tr(S)/d``, ``α`` Ledoit-Wolf's coefficient; the class-means covariance
    ``Σ_c n_c μ_c μ_cᵀ/(n − 1)`` is scaled by ``1 − α`` as in the paper.  These normalisations are those of tllib's
    ``regularized_h_score`` and transformer-ranker's ``HScore``, so the numbers agree with both.  In the
    eigenbasis of ``S``: ``(1 − α) Σ_i (b_i/(n − 1)) / ((1 − α)λ_i/n + αμ)`` (``b``, ``λ`` as in ``hscore``).

    >>> labels, rng = np.repeat([0, 1, 2], 20), np.random.default_rng(0)
    >>> aligned = np.eye(3)[labels] + 0.3 * rng.normal(size=(60, 3))
    >>> bool(hscore_shrink(aligned, labels) > hscore_shrink(rng.normal(size=(60, 3)), labels))
    True
    """
    x = _features(features)
    codes, classes = _labels(labels, x.shape[0])
    x = x - x.mean(axis=0)
    n, d = x.shape
    lam, between = _class_mean_spectrum(x, codes, classes)
    alpha = _ledoit_wolf_shrinkage(x, lam)
    shrunk = (1 - alpha) * lam / n + alpha * lam.sum() / (n * d)  # eigenvalues of Σ_α on the row space of F
    keep = shrunk > shrunk.max() * max(n, d) * EPS  # only bites when α = 0 and S is singular
    return float((1 - alpha) * (between[keep] / (n - 1) / shrunk[keep]).sum())


def _stratified_folds(codes: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold id per example: shuffle, sort by class, deal round-robin; ``max(2, min(folds, smallest class))`` folds."""
    if folds < 2:
        raise UserError(f"folds must be >= 2, got {folds}")
    folds = max(2, min(folds, int(np.bincount(codes).min())))
    order = np.random.default_rng(seed).permutation(codes.size)
    order = order[np.argsort(codes[order], kind="stable")]
    return np.argsort(order) % folds  # example order[j] goes to fold j % folds


def _knn_predict(train: np.ndarray, train_codes: np.ndarray, test: np.ndarray, k: int, classes: int) -> np.ndarray:
    """Majority vote of the ``k`` most similar unit rows; a tie goes to the class whose nearest member ranks first."""
    k = min(k, train.shape[0])
    predicted = []
    for start in range(0, test.shape[0], KNN_CHUNK_ROWS):
        similarity = test[start:start + KNN_CHUNK_ROWS] @ train.T  # (rows, n_train)
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        nearest = np.take_along_axis(nearest, np.argsort(-np.take_along_axis(similarity, nearest, 1), 1), 1)
        match = train_codes[nearest][:, :, None] == np.arange(classes)  # (rows, k, C), nearest first
        votes = match.sum(axis=1)
        first = np.where(match, np.arange(k)[None, :, None], k).min(axis=1)  # rank of each class's nearest member
        predicted.append(np.argmax(votes * (k + 1) - first, axis=1))
    return np.concatenate(predicted)


def _cross_validated_accuracy(x: np.ndarray, codes: np.ndarray, folds: int, seed: int,
                              predict: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> float:
    """Correct / n over the stratified folds, ``predict(train_x, train_codes, test_x)`` fitted per fold."""
    fold = _stratified_folds(codes, folds, seed)
    correct = 0
    for held_out in range(fold.max() + 1):
        test, train = fold == held_out, fold != held_out
        correct += int((predict(x[train], codes[train], x[test]) == codes[test]).sum())
    return correct / codes.size


def knn(features: np.ndarray, labels: np.ndarray, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    """Stratified ``folds``-fold cross-validated accuracy of a cosine ``k``-nearest-neighbour classifier.

    Each held-out example takes the majority label of its ``k`` training neighbours by cosine similarity
    ``x·x' / (‖x‖‖x'‖)`` (ties: the class with the nearest member); the score is correct / n over all folds.
    Folds shrink to the smallest class's size (never below 2).

    >>> labels, rng = np.repeat([0, 1, 2], 20), np.random.default_rng(0)
    >>> knn(np.eye(3)[labels] + 0.1 * rng.normal(size=(60, 3)), labels)
    1.0
    """
    x = _features(features)
    codes, classes = _labels(labels, x.shape[0])
    if k < 1:
        raise UserError(f"k must be >= 1, got {k}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    return _cross_validated_accuracy(x, codes, folds, seed, lambda train, train_codes, test: _knn_predict(
        train, train_codes, test, k, classes))


def _probe_predict(train: np.ndarray, train_codes: np.ndarray, test: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression  # the module's only scikit-learn use; imported when needed

    if np.unique(train_codes).size < 2:  # a tiny fold with one class left: the probe can only say that class
        return np.full(test.shape[0], train_codes[0])
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return LogisticRegression(C=1.0, max_iter=1000).fit((train - mean) / std, train_codes).predict((test - mean) / std)


def linear(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Stratified ``folds``-fold cross-validated accuracy of a linear probe (the folds of ``knn``).

    Features standardised with the training fold's mean and standard deviation, then scikit-learn's
    ``LogisticRegression(C=1.0, max_iter=1000)`` (multinomial, L2); the score is correct / n over all folds.

    >>> labels, rng = np.repeat([0, 1, 2], 20), np.random.default_rng(0)
    >>> linear(np.eye(3)[labels] + 0.1 * rng.normal(size=(60, 3)), labels)
    1.0
    """
    x = _features(features)
    return _cross_validated_accuracy(x, _labels(labels, x.shape[0])[0], folds, seed, _probe_predict)


def _source_classes(source_predictions: np.ndarray, n: int) -> np.ndarray:
    z = np.asarray(source_predictions)
    if z.ndim == 2 and z.shape[0] == n and np.isfinite(z).all():
        return z.argmax(axis=1)
    if z.ndim == 1 and z.size == n and z.dtype.kind in "iub":
        return np.unique(z, return_inverse=True)[1].reshape(-1)
    raise UserError(f"source predictions must be ({n}, source classes) finite scores or ({n},) integer source "
                    f"labels, got shape {z.shape} and dtype {z.dtype}")


def nce(source_predictions: np.ndarray, labels: np.ndarray) -> float:
    """Negative conditional entropy ``NCE = −H(Y|Z) = Σ_{y,z} P(y,z) log(P(y,z)/P(z))`` (≤ 0; 0 is best).

    Tran et al. 2019, "Transferability and hardness of supervised classification tasks" (ICCV).  ``Z`` is the
    source model's predicted class: the argmax of ``source_predictions`` (n, C_s), or the given (n,) ints;
    ``P`` is the empirical joint of (target label, source class) over the n examples.

    >>> nce(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]))  # a relabelling of the source classes
    0.0
    """
    y = np.asarray(labels)
    codes, classes = _labels(y, y.size)
    z = _source_classes(source_predictions, codes.size)
    sources = int(z.max()) + 1
    joint = np.bincount(codes * sources + z, minlength=classes * sources).reshape(classes, sources) / codes.size
    present, p_source = joint > 0, joint.sum(axis=0)  # P(z) > 0 wherever P(y, z) > 0; 0 log 0 = 0
    return float((joint * np.log(np.where(present, joint, 1.0) / np.where(p_source > 0, p_source, 1.0))).sum()) + 0.0


def leep(source_probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Log expected empirical prediction (≤ 0; higher is better).

    Nguyen et al. 2020, "LEEP: A New Measure to Evaluate Transferability of Learned Representations" (ICML).
    With ``θ`` (n, C_s) the source model's class probabilities: ``P(y, z) = (1/n) Σ_i θ_iz [y_i = y]``,
    ``P(y|z) = P(y, z) / P(z)`` and ``LEEP = (1/n) Σ_i log Σ_z P(y_i|z) θ_iz``.

    >>> leep(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([0, 0, 1]))
    0.0
    """
    theta = np.asarray(source_probabilities, dtype=np.float64)
    if theta.ndim != 2 or not np.isfinite(theta).all() or (theta < 0).any() or \
            not np.allclose(theta.sum(axis=1), 1.0, atol=1e-3):
        raise UserError("source_probabilities must be (n, source classes) probabilities whose rows sum to 1; "
                        "apply a softmax to logits first")
    codes, classes = _labels(labels, theta.shape[0])
    joint = np.eye(classes)[codes].T @ theta / codes.size  # (C_t, C_s)
    p_source = joint.sum(axis=0)
    conditional = np.divide(joint, p_source, out=np.zeros_like(joint), where=p_source > 0)  # P(y|z)
    return float(np.mean(np.log((theta * conditional[codes]).sum(axis=1)))) + 0.0


@dataclass(frozen=True)
class Estimator:
    """A registered transferability estimator; call it like the function it wraps."""

    name: str
    needs: Literal["features", "source_predictions"]
    paper: str
    score: Callable[..., float]

    def __call__(self, inputs: np.ndarray, labels: np.ndarray, **options: object) -> float:
        return self.score(inputs, labels, **options)


ESTIMATORS: dict[str, Estimator] = {e.name: e for e in (
    Estimator("logme", "features", "You et al. 2021, LogME (ICML)", logme),
    Estimator("hscore", "features", "Bao et al. 2019, H-score (ICIP)", hscore),
    Estimator("hscore_shrink", "features", "Ibrahim et al. 2022, shrinkage H-score (ECML-PKDD)", hscore_shrink),
    Estimator("knn", "features", "cross-validated cosine k-NN accuracy", knn),
    Estimator("linear", "features", "cross-validated logistic-regression probe accuracy", linear),
    Estimator("nce", "source_predictions", "Tran et al. 2019, NCE (ICCV)", nce),
    Estimator("leep", "source_predictions", "Nguyen et al. 2020, LEEP (ICML)", leep),
)}


def estimator(name: str) -> Estimator:
    """The registered estimator called ``name``; a ``UserError`` listing the known names otherwise."""
    if name not in ESTIMATORS:
        raise unknown_name("transferability estimator", name, ESTIMATORS)
    return ESTIMATORS[name]


@dataclass(frozen=True)
class LayerScore:
    """``layer``: the chosen layer's index (None for ``mean``); ``per_layer``: every layer's score (``best`` only)."""

    score: float
    layer: int | None
    per_layer: tuple[float, ...] | None


def score_layers(name: str, layers: Sequence[np.ndarray], labels: np.ndarray,
                 how: Literal["last", "mean", "best"] = "mean") -> LayerScore:
    """Score several layers' (n, d) features of one model with the feature estimator ``name``.

    ``last``: ``layers[-1]``.  ``best``: the argmax over layers (first on ties), every score kept.  ``mean``:
    the estimator on the element-wise mean of all layers' features, the layer averaging of Garbaciauskas et al.
    2024 (transformer-ranker's ``layermean``), which scores the whole depth at one estimator call.

    >>> labels = np.repeat([0, 1], 10)
    >>> noise, signal = np.random.default_rng(0).normal(size=(2, 20, 2))
    >>> score_layers("knn", [noise, signal + 4 * np.eye(2)[labels]], labels, how="best").layer
    1
    """
    chosen = estimator(name)
    if chosen.needs != "features":
        raise UserError(f"score_layers takes a feature estimator; '{name}' scores source predictions")
    if len(layers) == 0:
        raise UserError("score_layers needs at least one layer of features")
    if how == "last":
        return LayerScore(chosen(layers[-1], labels), len(layers) - 1, None)
    if how == "best":
        scores = tuple(chosen(layer, labels) for layer in layers)
        return LayerScore(max(scores), int(np.argmax(scores)), scores)
    if how == "mean":
        shapes = {np.shape(layer) for layer in layers}
        if len(shapes) != 1:
            raise UserError(f"layer averaging needs layers of one shape, got {sorted(shapes)}")
        total = sum(np.asarray(layer, dtype=np.float64) for layer in layers)  # never all layers in float64 at once
        return LayerScore(chosen(total / len(layers), labels), None, None)
    raise UserError(f"unknown layer aggregation '{how}'; valid: best, last, mean")
