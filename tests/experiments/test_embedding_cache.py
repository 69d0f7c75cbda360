"""Frozen-encoder features are computed once per distinct text and reused across runs."""

from __future__ import annotations

import numpy as np

from transferkit.core.config import RunConfig
from transferkit.core.contracts import TextExamples
from transferkit.data import read_table, to_examples
from transferkit.experiments.embedding_cache import EmbeddingCache
from transferkit.experiments.run import train


def test_cache_encodes_only_unseen_texts(tmp_path) -> None:
    calls: list[int] = []

    def encode(examples: TextExamples) -> np.ndarray:
        calls.append(len(examples))
        return np.array([[len(t), t.count("a")] for t in examples.texts], dtype=np.float32)

    cache = EmbeddingCache(str(tmp_path))
    first = cache.features({"model": "m"}, TextExamples(["a", "bb", "a"]), encode)
    assert calls == [2] and first.tolist() == [[1, 1], [2, 0], [1, 1]]
    again = EmbeddingCache(str(tmp_path)).features({"model": "m"}, TextExamples(["bb", "ccc"]), encode)
    assert calls == [2, 1] and again.tolist() == [[2, 0], [3, 0]]
    cache.features({"model": "other"}, TextExamples(["bb"]), encode)
    assert calls == [2, 1, 1]  # a different key (model/layer/pooling/max_length) is a different cache


def test_grid_of_heads_and_budgets_embeds_each_text_once(tiny_model, toy_files, tmp_path) -> None:
    cache = EmbeddingCache(str(tmp_path / "cache"))
    for index, (head, budget) in enumerate([("logreg", None), ("linear", 20), ("mlp", 40), ("logreg", 10)]):
        config = RunConfig.from_dict({
            "model": tiny_model, "output": str(tmp_path / f"run{index}"),
            "strategy": {"name": "feature_extraction", "head": head},
            "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence",
                     "budget": budget},
            "training": {"epochs": 2, "progress": False, "learning_rate": 1e-2},
        })
        train(config, cache=cache)
    texts = set()
    for path in toy_files.values():
        texts.update(to_examples(read_table(path), "sentence", "label")[0].texts)
    assert cache.embedded == len(texts)
    assert cache.reused > 0


def test_budget_sample_follows_the_seed_and_eval_cap_is_stratified(toy_files) -> None:
    from transferkit.core.config import DataConfig
    from transferkit.data.task_splits import load_text_splits

    data = DataConfig(train=toy_files["train"], text_column="sentence", budget=5, max_eval_examples=10)
    one, two = load_text_splits(data, seed=1), load_text_splits(data, seed=2)
    assert len(one.train) == len(two.train) == 10
    assert one.train.rows != two.train.rows  # another seed, another labelled sample
    assert one.eval.rows == two.eval.rows and len(one.eval) == 10  # one shared eval set
    assert sorted(set(one.eval.labels)) == [0, 1]
    fixed = DataConfig(**{**data.__dict__, "budget_seed": 7})
    assert load_text_splits(fixed, seed=1).train.rows == load_text_splits(fixed, seed=2).train.rows
