"""Student t and normal quantiles in pure Python (``math`` only), no scipy.

The t quantile inverts the exact CDF, written with the regularised incomplete beta
function ``I_x(a, b)``: for ``t > 0`` and ``nu`` degrees of freedom::

    P(T > t) = 0.5 * I_x(nu / 2, 1 / 2),   x = nu / (nu + t^2)

``I_x`` is evaluated with its continued fraction (modified Lentz) and the equation is
solved for ``x`` by bisection, which is monotone and exact to double precision.  For
``nu > 1000`` the Cornish-Fisher expansion around the normal quantile is used instead
(its error is ``O(nu^-4)``, below ``1e-12`` there).
"""

from __future__ import annotations

import math

__all__ = ["normal_quantile", "regularized_beta", "t_quantile"]

_TINY = 1e-300
_EPS = 1e-15
_CF_DF = 1000.0


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of ``I_x(a, b)`` (Numerical Recipes ``betacf``, modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                          -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            delta = d * c
            h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b) = B(x; a, b) / B(a, b)`` for ``0 <= x <= 1``.

    Uses the continued fraction directly when ``x < (a + 1) / (a + b + 2)`` and the
    symmetry ``I_x(a, b) = 1 - I_{1-x}(b, a)`` otherwise, where it converges fast.
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def normal_quantile(p: float) -> float:
    """Standard normal quantile ``z`` with ``Phi(z) = p``, by bisection on ``erfc``.

    ``Phi(z) = 0.5 * erfc(-z / sqrt(2))``; 200 halvings of ``[-40, 40]`` reach double precision.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    low, high = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def _t_cornish_fisher(p: float, df: float) -> float:
    """Cornish-Fisher expansion of the t quantile in powers of ``1/df`` around ``z = Phi^-1(p)``."""
    z = normal_quantile(p)
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def t_quantile(p: float, df: float) -> float:
    """Quantile ``t`` of Student's t with ``df`` degrees of freedom: ``P(T <= t) = p``.

    Solves ``0.5 * I_x(df/2, 1/2) = min(p, 1 - p)`` for ``x`` by bisection, then
    ``|t| = sqrt(df (1 - x) / x)``, with the sign of ``p - 1/2``.

    Parameters
    ----------
    p : float
        Probability in ``(0, 1)``.
    df : float
        Degrees of freedom, ``> 0``.

    Returns
    -------
    float
        The quantile.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df}")
    if p == 0.5:
        return 0.0
    tail = min(p, 1.0 - p)
    if df > _CF_DF:
        magnitude = abs(_t_cornish_fisher(1.0 - tail, df))
    else:
        low, high = 0.0, 1.0  # 0.5 * I_x rises from 0 (t = inf) to 0.5 (t = 0)
        for _ in range(200):
            mid = 0.5 * (low + high)
            if 0.5 * regularized_beta(0.5 * df, 0.5, mid) < tail:
                low = mid
            else:
                high = mid
            if high - low <= 1e-17 * high:
                break
        x = 0.5 * (low + high)
        magnitude = math.sqrt(df * (1.0 - x) / x)
    return magnitude if p > 0.5 else -magnitude
