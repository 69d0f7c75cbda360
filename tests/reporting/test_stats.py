"""summarize, paired_comparison and the t quantile against manual computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tests.reporting.fake_results import make_cells
from transferkit.core.results import Cell
from transferkit.reporting.stats import paired_comparison, sign_flip_p_value, summarize, t_interval, t_quantile


def test_t_quantile_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 9, 29, 2.5, 500):
        for p in (0.975, 0.995, 0.9, 0.025):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-6)
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729, abs=1e-6)


def test_summarize_matches_manual_computation() -> None:
    cells = make_cells()
    rows = summarize(cells, "accuracy")
    assert len(rows) == 4 * 3  # strategy x budget; seeds are replicates, the failed cell is left out
    row = next(r for r in rows if r["strategy"] == "lora" and r["data.budget"] == 32)
    values = np.array([c.metrics["eval"]["accuracy"] for c in cells
                       if c.axes["strategy"] == "lora" and c.axes["data.budget"] == 32])
    mean, std = values.mean(), values.std(ddof=1)
    half = 4.302652729 * std / math.sqrt(3)  # t(0.975, df=2)
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(mean)
    assert row["std"] == pytest.approx(std)
    assert row["ci_low"] == pytest.approx(mean - half, rel=1e-7)
    assert row["ci_high"] == pytest.approx(mean + half, rel=1e-7)
    assert "training.seed" not in row
    assert [r["data.budget"] for r in rows[:3]] == [8, 32, 128]  # numeric order


def test_summarize_group_by_and_single_value() -> None:
    rows = summarize(make_cells(), "accuracy", group_by=["strategy"])
    assert [r["strategy"] for r in rows] == ["finetune", "lora", "scratch", "tfidf"]
    assert all(r["n"] == 9 for r in rows)
    assert t_interval([0.5]) == (0.5, 0.0, 0.5, 0.5)


def _cell(strategy: str, budget: int, seed: int, accuracy: float) -> Cell:
    axes = {"strategy": strategy, "data.budget": budget, "training.seed": seed}
    return Cell(f"{strategy}{budget}{seed}", axes, {}, status="done", metrics={"eval": {"accuracy": accuracy}})


def test_paired_comparison_against_brute_force() -> None:
    diffs = [0.05, 0.02, -0.01, 0.04, 0.03, 0.06]
    cells = []
    for i, d in enumerate(diffs):
        budget, seed = (8, 32, 128)[i % 3], i // 3
        cells += [_cell("finetune", budget, seed, 0.6 + 0.01 * i + d), _cell("scratch", budget, seed, 0.6 + 0.01 * i)]
    cells.append(_cell("finetune", 999, 0, 0.9))  # unpaired: ignored
    result = paired_comparison(cells, "finetune", "scratch")
    observed = abs(np.mean(diffs))
    flips = [abs(np.mean([s * d for s, d in zip(signs, diffs, strict=True)]))
             for signs in itertools.product((1, -1), repeat=len(diffs))]
    brute = sum(f >= observed - 1e-12 for f in flips) / len(flips)
    assert result["n_pairs"] == 6
    assert result["mean_diff"] == pytest.approx(np.mean(diffs))
    assert result["p_value"] == pytest.approx(brute)
    assert result["ci_low"] <= result["mean_diff"] <= result["ci_high"]
    assert result["ci_low"] > 0  # every resample of mostly positive differences stays positive here


def test_paired_comparison_on_grid_and_no_pairs() -> None:
    cells = make_cells()
    result = paired_comparison(cells, "finetune", "tfidf", n_resamples=2000)
    assert result["n_pairs"] == 9
    assert result["mean_diff"] > 0
    assert result["p_value"] == pytest.approx(2 / 2**9)  # all 9 differences positive: only +/- all-same flips tie
    assert result["ci_low"] <= result["mean_diff"] <= result["ci_high"]
    assert paired_comparison(cells, "finetune", "nope")["n_pairs"] == 0


def test_sign_flip_random_for_many_pairs() -> None:
    rng = np.random.default_rng(1)
    diffs = rng.normal(0.0, 1.0, size=40)
    p = sign_flip_p_value(diffs, n_resamples=10_000, seed=0)
    assert 0 < p <= 1
    assert sign_flip_p_value(np.full(40, 0.1), n_resamples=2000) == pytest.approx(1 / 2001)
