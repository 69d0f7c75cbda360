"""The few-shot protocol grid (examples/fewshot_protocol.yaml): k x seeds x strategies, one sample per (k, seed)
shared by every strategy, a different sample per seed, one fixed test set, k larger than a class refused."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

from tests.helpers import one_line_error
from transferkit.core.config import DataConfig
from transferkit.core.yaml_config import read_yaml_file
from transferkit.data.task_splits import load_text_splits
from transferkit.experiments.grid import expand, parse_grid

PROTOCOL = Path(__file__).resolve().parents[2] / "examples" / "fewshot_protocol.yaml"


def cells(tmp_path) -> list:
    return expand(parse_grid(read_yaml_file(str(PROTOCOL), "grid"), str(PROTOCOL)), str(tmp_path))


def test_the_grid_is_the_standard_protocol(tmp_path) -> None:
    grid = cells(tmp_path)
    assert {axes["data.budget"] for axes, _ in grid} == {8, 16, 32, 64}
    assert {axes["training.seed"] for axes, _ in grid} == {1, 2, 3, 4, 5}
    assert len({axes["strategy"] for axes, _ in grid}) >= 4 and "protonet" in {axes["strategy"] for axes, _ in grid}
    assert len(grid) == 4 * 5 * len({axes["strategy"] for axes, _ in grid})
    assert all(config.training.eval_every_epoch is False for _, config in grid)  # the test split selects nothing


def test_every_strategy_at_one_k_and_seed_reads_the_same_data(tmp_path) -> None:
    """The sample is a function of (data settings, sample seed) alone, so equal settings mean equal samples."""
    groups: dict[tuple, set] = defaultdict(set)
    for axes, config in cells(tmp_path):
        sample_seed = config.data.budget_seed if config.data.budget_seed is not None else config.training.seed
        data = dataclasses.asdict(config.data)
        groups[(axes["data.budget"], axes["training.seed"])].add((repr(data), sample_seed))
    assert all(len(settings) == 1 for settings in groups.values())
    seeds_at_k = defaultdict(set)
    for (k, _), settings in groups.items():
        seeds_at_k[k] |= {seed for _, seed in settings}
    assert all(len(seeds) == 5 for seeds in seeds_at_k.values())  # a different sample seed per seed


def test_each_seed_draws_another_sample_and_the_test_set_stays(toy_files) -> None:
    data = DataConfig(train=toy_files["train"], text_column="sentence", eval_fraction=0.1, split_seed=13, budget=8)
    splits = [load_text_splits(data, seed) for seed in (1, 2, 3, 4, 5)]
    samples = {tuple(sorted(s.train.texts)) for s in splits}
    assert len(samples) == 5 and all(len(s.train) == 16 for s in splits)
    assert len({tuple(s.eval.texts) for s in splits}) == 1
    assert not set(splits[0].train.texts) & set(splits[0].eval.texts)


def test_k_larger_than_a_class_names_the_class_and_its_size(toy_files) -> None:
    data = DataConfig(train=toy_files["train"], text_column="sentence", budget=200)
    one_line_error(lambda: load_text_splits(data, 1), "data.budget=200", "has only")
