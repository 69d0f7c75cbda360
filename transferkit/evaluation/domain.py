"""How far apart two domains are: proxy A-distance of their features and overlap of their vocabularies.

* **Proxy A-distance** (Ben-David et al. 2007, "Analysis of Representations for Domain Adaptation";
  used by Ganin et al. 2016 to show DANN's alignment): train a linear classifier to tell source
  features from target features and measure its held-out error ε; ``PAD = 2 (1 − 2ε)``, from 0
  (indistinguishable, ε = 0.5) to 2 (perfectly separable).  Computed before and after adaptation, it
  shows whether a method actually brought the representations together.
* **Vocabulary overlap** (Gururangan et al. 2020, Fig. 2): the share of the ``top`` most frequent
  word types of one domain that are also among the ``top`` of the other.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> same = proxy_a_distance(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)))
>>> apart = proxy_a_distance(rng.normal(size=(400, 8)), rng.normal(3.0, 1.0, size=(400, 8)))
>>> same < 0.3 < 1.9 < apart
True
>>> vocabulary_overlap(["the plot was slow"], ["the battery was dead"], top=4)
0.5
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def proxy_a_distance(source: np.ndarray, target: np.ndarray, seed: int = 0) -> float:
    """``2 (1 − 2ε)`` for the held-out error ε of a logistic-regression domain classifier.

    Shapes: ``source`` (n_s, d), ``target`` (n_t, d).  Both sides are subsampled to the same size
    (so ε = 0.5 is chance), standardised, and split in halves: fit on one, ε on the other.
    """
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    n = min(len(source), len(target))
    if n < 4:
        raise ValueError(f"proxy A-distance needs at least 4 examples per domain, got {n}")
    x = np.concatenate([source[rng.permutation(len(source))[:n]], target[rng.permutation(len(target))[:n]]])
    y = np.repeat([0, 1], n)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    order = rng.permutation(2 * n)
    fit, held = order[: n], order[n:]
    classifier = LogisticRegression(C=1.0, max_iter=2000).fit(x[fit], y[fit])
    error = float(np.mean(classifier.predict(x[held]) != y[held]))
    return 2.0 * (1.0 - 2.0 * min(error, 0.5))


def top_words(texts: Sequence[str], top: int) -> set[str]:
    """The ``top`` most frequent lower-cased word types (letters only) of ``texts``."""
    counts = Counter(word for text in texts for word in _WORD.findall(text.lower()))
    return {word for word, _ in counts.most_common(top)}


def vocabulary_overlap(texts_a: Sequence[str], texts_b: Sequence[str], top: int = 5000) -> float:
    """``|V_a ∩ V_b| / top`` for the ``top`` most frequent word types of each side."""
    a, b = top_words(texts_a, top), top_words(texts_b, top)
    return len(a & b) / max(min(len(a), len(b)), 1)
