"""``contrastive``: the pair sampler (bounded, seeded, balanced, multi-label), its batch source, the strategy's
defaults and errors, and few-shot learning on a tiny model that beats the untrained encoder's features.

Few-shot toy (asserted below): 8 labelled toy sentences per class from ``write_toy_csv``, a tiny random BERT,
eval on 200 other toy sentences.  ``feature_extraction`` (the same logistic head on the untrained encoder) vs
``contrastive`` (that head after SetFit training at lr 3e-3; 16 rows give 4 rounds, 128 pairs), both on
unit-length features (contrastive's ``task.normalize`` default), seeds 0-2: gains +0.135, +0.080, +0.035
accuracy, +0.083 on average.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from tests.helpers import one_torch_thread
from transferkit.core.config import RunConfig, TrainingConfig
from transferkit.core.errors import UserError
from transferkit.data.collate import PaddingCollator
from transferkit.data.pairs import PairSource, check_pairable, distinct_pairs, label_matrix, pair_rounds, sample_pairs
from transferkit.experiments.api import load as load_model
from transferkit.experiments.run import components, resolve_defaults, train
from transferkit.strategies import STRATEGIES
from transferkit.strategies.contrastive import Contrastive, ContrastiveConfig
from transferkit.testing import write_toy_csv
from transferkit.training import Trainer


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def draw(labels: list, iterations: int = 5, seed: int = 0):
    return sample_pairs(label_matrix(labels), iterations, np.random.default_rng(seed))


# ---- the sampler ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "iterations"), [(6, 1), (40, 3), (333, 20), (20_000, 2)])
def test_an_epoch_holds_two_pairs_per_example_and_round_linear_in_the_data(n: int, iterations: int) -> None:
    """``2·R·n`` pairs: 80,000 for 20,000 examples, where all pairs would be 200 million (SetFit's default
    enumerates them); drawing them must not build anything quadratic."""
    pairs = draw([i % 3 for i in range(n)], iterations)
    assert len(pairs.left) == len(pairs.right) == len(pairs.similarity) == 2 * iterations * n


def test_every_example_gets_one_positive_and_one_negative_partner_per_round() -> None:
    labels = [0] * 5 + [1] * 3 + [2] * 7
    pairs = draw(labels, iterations=40)
    y = np.asarray(labels)
    assert (pairs.left != pairs.right).all()
    positive = pairs.similarity == 1.0
    assert set(np.unique(pairs.similarity)) == {0.0, 1.0}
    assert (y[pairs.left] == y[pairs.right])[positive].all() and (y[pairs.left] != y[pairs.right])[~positive].all()
    for anchor in range(len(labels)):  # balanced: R positives and R negatives per anchor
        mine = pairs.left == anchor
        assert positive[mine].sum() == 40 and (~positive[mine]).sum() == 40
    # uniform partners: over 40 rounds every other member of a class of 5 is drawn (P(one missing) < 4·0.75^40)
    for anchor in range(5):
        assert set(pairs.right[(pairs.left == anchor) & positive].tolist()) == set(range(5)) - {anchor}


@pytest.mark.parametrize("seed", range(5))
def test_distinct_pairs_are_counted_over_label_sets_as_over_every_pair_of_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = label_matrix([sorted(set(rng.integers(0, 4, size=rng.integers(0, 3)).tolist())) for _ in range(30)], 4)
    overlap = (labels.astype(int) @ labels.T.astype(int)) > 0
    empty = ~labels.any(axis=1)
    positive = overlap | np.outer(empty, empty)  # both without labels: positive, as the sampler pairs them
    upper = np.triu_indices(len(labels), 1)
    assert distinct_pairs(labels) == (int(positive[upper].sum()), int((~positive[upper]).sum()))


def test_rounds_stop_where_pairs_would_only_repeat() -> None:
    """8 + 8 rows: 56 positive and 64 negative distinct pairs, so 4 rounds (128 pairs; SetFit's oversampling
    enumerates 144 with self-pairs), not 20 (640); 5 classes of 8: 640 negatives, 16 rounds (1,280, as SetFit)."""
    assert distinct_pairs(label_matrix([0] * 8 + [1] * 8)) == (56, 64)
    assert pair_rounds(label_matrix([0] * 8 + [1] * 8), 20) == 4
    assert pair_rounds(label_matrix([0] * 8 + [1] * 8), 3) == 3
    assert pair_rounds(label_matrix([c for c in range(5) for _ in range(8)]), 20) == 16
    assert pair_rounds(label_matrix([i % 3 for i in range(333)]), 20) == 20
    source = PairSource(rows([0] * 8 + [1] * 8), PaddingCollator(0), batch_size=16, seed=0, num_iterations=20)
    assert source.num_pairs == 128 and source.num_batches == 8 and sum(len(b["similarity"]) for b in source) == 128


def test_pairs_are_a_function_of_the_seed() -> None:
    labels = [0, 1] * 10
    first, again, other = draw(labels, seed=3), draw(labels, seed=3), draw(labels, seed=4)
    assert np.array_equal(first.right, again.right) and np.array_equal(first.similarity, again.similarity)
    assert not np.array_equal(first.right, other.right)


def test_multi_label_pairs_share_a_label_with_a_jaccard_target_and_negatives_share_none() -> None:
    labels = [[0], [0, 1], [1], [0, 1], [2], [2], [], []]
    sets = [set(s) for s in labels]
    pairs = draw(labels, iterations=30)
    for left, right, target in zip(pairs.left, pairs.right, pairs.similarity, strict=True):
        a, b = sets[left], sets[right]
        union = a | b
        expected = len(a & b) / len(union) if union else 1.0
        assert target == pytest.approx(expected)
    positive = np.tile(np.repeat([True, False], len(labels)), 30)  # per round: every anchor's positive, then its negative
    for left, right in zip(pairs.left[positive], pairs.right[positive], strict=True):
        assert sets[left] & sets[right] or not (sets[left] or sets[right])
    for left, right in zip(pairs.left[~positive], pairs.right[~positive], strict=True):
        assert not sets[left] & sets[right] and (sets[left] or sets[right])
    assert 0.5 in set(pairs.similarity[positive].round(3).tolist())  # {0, 1} vs {0}: half similar, not identical


def test_a_class_with_one_example_has_no_positive_pair_and_says_which() -> None:
    with pytest.raises(UserError, match=r"data\.train: class 'sport' has a single example .*data\.budget to 2"):
        check_pairable(label_matrix([0, 0, 1, 2, 2]), ["business", "sport", "tech"])
    with pytest.raises(UserError, match=r"label set \{'a', 'b'\} has a single example"):
        check_pairable(label_matrix([[0, 1], [2], [2]], 3), ["a", "b", "c"])
    with pytest.raises(UserError, match="at least two classes"):
        check_pairable(label_matrix([1, 1, 1]), ["neg", "pos"])


# ---- the batch source -------------------------------------------------------------------------------
def rows(labels: list[int]) -> list[dict]:
    """Each row's token is its own index + 1, so a collated batch shows which rows it holds."""
    return [{"input_ids": [i + 1] * (1 + i % 4), "attention_mask": [1] * (1 + i % 4), "labels": y}
            for i, y in enumerate(labels)]


def test_a_batch_embeds_anchors_then_partners_and_carries_their_similarity() -> None:
    labels = [0, 1, 2] * 6
    source = PairSource(rows(labels), PaddingCollator(0), batch_size=8, seed=0, num_iterations=2)
    assert source.num_pairs == 72 and source.num_batches == 9
    seen = 0
    for batch in source:
        half = len(batch["similarity"])
        assert batch["input_ids"].shape[0] == 2 * half and "labels" not in batch
        anchors, partners = batch["input_ids"][:half, 0] - 1, batch["input_ids"][half:, 0] - 1
        same = np.asarray(labels)[anchors.numpy()] == np.asarray(labels)[partners.numpy()]
        assert np.array_equal(same, batch["similarity"].numpy() == 1.0)
        seen += half
    assert seen == 72


def test_pairs_are_redrawn_every_epoch_and_a_resumed_source_yields_the_same_batches() -> None:
    def source() -> PairSource:
        return PairSource(rows([0, 1] * 12), PaddingCollator(0), batch_size=4, seed=7, num_iterations=3)

    first = source()
    first.set_epoch(1)
    epoch_one = list(first)
    first.set_epoch(2)
    assert not all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(epoch_one, first, strict=False))
    resumed = source()
    resumed.load_state_dict({"epoch": 1, "start_batch": 5})
    later = list(resumed)
    assert len(later) == len(epoch_one) - 5
    for expected, got in zip(epoch_one[5:], later, strict=True):
        assert torch.equal(expected["input_ids"], got["input_ids"]) and torch.equal(expected["similarity"], got["similarity"])


# ---- the strategy -----------------------------------------------------------------------------------
def test_setfits_training_settings_apply_unless_the_user_sets_them() -> None:
    strategy = Contrastive()
    resolved = strategy.resolve_training(TrainingConfig())
    assert (resolved.epochs, resolved.batch_size, resolved.learning_rate, resolved.eval_every_epoch) == (1, 16, 2e-5, False)
    mine = strategy.resolve_training(TrainingConfig(epochs=4, batch_size=8, learning_rate=1e-4))
    assert (mine.epochs, mine.batch_size, mine.learning_rate) == (4, 8, 1e-4)
    finetune = STRATEGIES.get("finetune")().resolve_training(TrainingConfig())
    assert (finetune.epochs, finetune.batch_size) == (3, 32)  # everyone else keeps the usual defaults


def test_bad_options_fail_before_any_work() -> None:
    with pytest.raises(UserError, match="num_iterations"):
        Contrastive(ContrastiveConfig(num_iterations=0)).check_task(object)
    with pytest.raises(UserError, match="margin"):
        Contrastive(ContrastiveConfig(margin=-1.0)).check_task(object)


def test_both_sides_of_a_pair_are_embedded_in_one_encoder_pass(tiny_model: str, toy_files: dict[str, str]) -> None:
    from transferkit.data import read_table, to_examples
    from transferkit.models.loading import load_backbone
    from transferkit.tasks import TASKS

    examples, labels = to_examples(read_table(toy_files["train"]), "sentence", "label")
    task = TASKS.get("classification")(labels=labels.names)
    loaded = load_backbone(tiny_model)
    strategy = Contrastive()
    model = strategy.prepare(task.build_model(loaded))
    config = strategy.resolve_training(TrainingConfig())
    batch = next(iter(strategy.batch_source({"train": task.featurize(examples, loaded.tokenizer, 64)},
                                            PaddingCollator(loaded.tokenizer.pad_token_id), config)))
    calls = []
    handle = model.backbone.register_forward_hook(lambda module, args, output: calls.append(1))
    losses = strategy.loss(model, batch)
    handle.remove()
    assert len(calls) == 1 and losses.total.requires_grad and set(losses.parts) == {"cosine"}
    assert not any(p.requires_grad for p in model.head.parameters())  # fitted in closed form after training


def run_config(tiny_model: str, files: dict[str, str], output: str, strategy: str, seed: int, **data) -> RunConfig:
    return RunConfig.from_dict({
        "model": tiny_model, "strategy": strategy, "output": output,
        "data": {"train": files["train"], "eval": files["eval"], "text_column": "sentence", "max_length": 64, **data},
        "training": {"seed": seed, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0}})


@pytest.mark.parametrize(("strategy", "given", "expected"),
                         [("contrastive", None, 256), ("contrastive", 64, 64), ("finetune", None, 128),
                          ("feature_extraction", None, 128), ("protonet", 512, 512)])
def test_contrastive_reads_256_tokens_where_the_others_read_128_unless_the_user_sets_a_length(
        tiny_model: str, toy_files: dict[str, str], strategy: str, given: int | None, expected: int) -> None:
    """SetFit's input length for the pair training (``data_defaults``); the resolved value is what the run uses
    and saves."""
    config = run_config(tiny_model, toy_files, "unused", strategy, 0, max_length=given)
    assert config.data.max_length == given
    assert resolve_defaults(config, components(config)).data.max_length == expected


def test_a_class_with_one_labelled_example_fails_before_training(tiny_model: str, toy_files: dict[str, str],
                                                                  tmp_path, monkeypatch) -> None:
    def no_training(*args, **kwargs):
        raise AssertionError("the Trainer ran")

    monkeypatch.setattr(Trainer, "fit", no_training)
    config = run_config(tiny_model, toy_files, str(tmp_path / "run"), "contrastive", 0, budget=1)
    with pytest.raises(UserError, match=r"data\.train: class '(neg|pos)' has a single example"):
        train(config)


@pytest.fixture(scope="module")
def few_shot_files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("few_shot")
    return {"train": write_toy_csv(str(root / "train.csv"), 240, seed=0),
            "eval": write_toy_csv(str(root / "eval.csv"), 200, seed=1)}


def test_contrastive_training_beats_the_untrained_encoders_features_at_eight_labels_per_class(
        tiny_model: str, few_shot_files: dict[str, str], tmp_path) -> None:
    """Same 8 labels per class, same logistic head; only the SetFit training of the encoder differs."""
    gains = []
    for seed in (0, 1, 2):
        accuracy = {}
        for strategy in ("feature_extraction", "contrastive"):
            output = str(tmp_path / f"{strategy}-{seed}")
            config = run_config(tiny_model, few_shot_files, output, strategy, seed, budget=8)
            config.task.options["normalize"] = True  # contrastive's default, so both heads see unit-length features
            result = train(config)
            accuracy[strategy] = result.metrics["eval"]["accuracy"]
            assert result.metrics["train_size"] == 16
        gains.append(accuracy["contrastive"] - accuracy["feature_extraction"])
        assert os.path.isdir(os.path.join(output, "model"))
    assert min(gains) > 0 and float(np.mean(gains)) >= 0.05, gains


def test_contrastive_normalises_the_heads_features_unless_the_user_says_otherwise(tiny_model: str, toy_files,
                                                                                 tmp_path) -> None:
    """Its cosine loss trains directions only, so its head sees unit-length features (as SetFit's does); the value
    is resolved into the saved config, and other strategies keep the raw pooled features."""
    from transferkit.experiments.run import components
    from transferkit.strategies.finetune import Finetune

    def task_config(strategy: str, **task) -> object:
        config = run_config(tiny_model, toy_files, str(tmp_path / strategy), strategy, 0)
        config.task.options.update(task)
        return components(config).task_config

    assert task_config("contrastive").normalize is True
    assert task_config("contrastive", normalize=False).normalize is False
    assert task_config("feature_extraction").normalize is None
    assert Finetune().resolve_task(task_config("feature_extraction")).normalize is None
    result = train(run_config(tiny_model, toy_files, str(tmp_path / "run"), "contrastive", 0, budget=4))
    assert result.config["task"]["normalize"] is True
    model = load_model(str(tmp_path / "run"))
    batch = PaddingCollator(0)(model.predictor.featurize(model.task.from_inputs(["good film", "bad plot"])))
    features = model.predictor.model.encode(batch)
    assert torch.allclose(features.norm(dim=-1), torch.ones(2), atol=1e-5)
