"""Stratified split, label budget and cap: proportions, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import one_line_error
from transferkit.data import apply_budget, cap_examples, stratified_split

NAMES = ["neg", "neu", "pos"]


def labels_with(counts: list[int], seed: int = 0) -> np.ndarray:
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(labels)


def test_stratified_split_proportions_per_class():
    labels = labels_with([500, 300, 45, 2, 1])
    train, held = stratified_split(labels.tolist(), 0.1, seed=13)
    assert np.bincount(labels[held], minlength=5).tolist() == [50, 30, 5, 1, 0]  # round(4.5)=5, min 1, singleton 0
    assert np.bincount(labels[train], minlength=5).tolist() == [450, 270, 40, 1, 1]
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(labels.size))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(held) > 0)


def test_stratified_split_is_deterministic_per_seed():
    labels = labels_with([100, 80]).tolist()
    first = stratified_split(labels, 0.25, seed=1)
    again = stratified_split(labels, 0.25, seed=1)
    other = stratified_split(labels, 0.25, seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


def test_stratified_split_keeps_one_for_training_and_handles_sparse_label_ids():
    train, held = stratified_split([7, 7, 3, 3, 3], 0.9, seed=0)
    labels = np.array([7, 7, 3, 3, 3])
    assert sorted(labels[train].tolist()) == [3, 7]
    assert sorted(labels[held].tolist()) == [3, 3, 7]


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, float("nan")])
def test_stratified_split_bad_fraction(fraction):
    one_line_error(lambda: stratified_split([0, 1, 0, 1], fraction, 0), "data.eval_fraction")


def test_stratified_split_impossible():
    one_line_error(lambda: stratified_split([0, 1, 2], 0.5, 0), "data.eval")


@pytest.mark.parametrize("budget", [16, 16.0, np.int64(16)])
def test_budget_k_per_class_is_exact(budget):
    labels = labels_with([100, 40, 16])
    picked = apply_budget(labels.tolist(), budget, seed=3, label_names=NAMES, source="train.tsv")
    assert np.bincount(labels[picked]).tolist() == [16, 16, 16]
    assert np.all(np.diff(picked) > 0)
    again = apply_budget(labels.tolist(), budget, seed=3, label_names=NAMES, source="train.tsv")
    assert np.array_equal(picked, again)
    assert not np.array_equal(picked, apply_budget(labels.tolist(), budget, 4, NAMES, "train.tsv"))


def test_budget_fraction_is_stratified():
    labels = labels_with([1000, 200, 10])
    picked = apply_budget(labels.tolist(), 0.05, seed=0, label_names=NAMES, source="train.tsv")
    assert np.bincount(labels[picked]).tolist() == [50, 10, 1]  # round(0.5) = 1


def test_budget_larger_than_a_class():
    labels = labels_with([100, 5, 40]).tolist()
    one_line_error(lambda: apply_budget(labels, 8, 0, NAMES, "train.tsv"),
                   "train.tsv", "class 'neu'", "only 5", "8", "data.budget")


@pytest.mark.parametrize("budget", [0, -3, 1.5, 2.0001, float("inf"), float("nan"), True, "8"])
def test_budget_invalid(budget):
    one_line_error(lambda: apply_budget([0, 1, 2] * 10, budget, 0, NAMES, "train.tsv"), "data.budget")


def test_cap_examples_stratified():
    labels = labels_with([900, 90, 10])
    picked = cap_examples(labels.tolist(), 100, seed=0)
    assert picked.size == 100 and np.all(np.diff(picked) > 0)
    counts = np.bincount(labels[picked]).tolist()
    assert counts == [90, 9, 1]
    assert np.array_equal(picked, cap_examples(labels.tolist(), 100, seed=0))


def test_cap_examples_keeps_every_class_and_is_noop_when_large():
    labels = labels_with([995, 3, 2])
    picked = cap_examples(labels.tolist(), 10, seed=1)
    assert picked.size == 10 and set(labels[picked].tolist()) == {0, 1, 2}
    assert np.array_equal(cap_examples(labels.tolist(), 5000, 0), np.arange(1000))
    assert cap_examples(labels.tolist(), 2, 0).size == 2
    one_line_error(lambda: cap_examples(labels.tolist(), 0, 0), "data.max_train_examples")
