"""Domain-distance diagnostics: proxy A-distance and vocabulary overlap."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit.evaluation.domain import proxy_a_distance, vocabulary_overlap


def test_proxy_a_distance_is_near_0_for_one_domain_and_near_2_for_separable_ones() -> None:
    rng = np.random.default_rng(0)
    assert proxy_a_distance(rng.normal(size=(400, 8)), rng.normal(size=(600, 8))) < 0.3
    shifted = rng.normal(size=(400, 8))
    shifted[:, 0] += 4.0  # one feature tells the domains apart
    assert proxy_a_distance(rng.normal(size=(400, 8)), shifted) > 1.8
    with pytest.raises(ValueError, match="at least 4"):
        proxy_a_distance(np.zeros((2, 3)), np.zeros((9, 3)))


def test_vocabulary_overlap_counts_shared_frequent_words() -> None:
    books = ["the the the the plot plot plot was was novel"]  # top 3: the, plot, was
    electronics = ["the the the the battery battery battery was was price"]  # top 3: the, battery, was
    assert vocabulary_overlap(books, books, top=3) == 1.0
    assert vocabulary_overlap(books, electronics, top=3) == pytest.approx(2 / 3)
