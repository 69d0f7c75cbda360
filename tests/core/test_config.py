"""RunConfig: YAML round trip, dotted overrides, type coercion, suggestions."""

from __future__ import annotations

import pytest
import yaml

from transferkit.core.config import RunConfig, apply_overrides
from transferkit.core.errors import UserError
from transferkit.experiments.run import components


def test_yaml_round_trip_preserves_everything() -> None:
    config = RunConfig.from_dict({"model": "m", "strategy": {"name": "finetune", "freeze_layers": 2},
                                  "data": {"train": "t.csv", "budget": 8}, "training": {"epochs": 2}})
    again = RunConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again == config and again.strategy.options == {"freeze_layers": 2}


def test_overrides_parse_yaml_scalars_and_coerce() -> None:
    config = apply_overrides(RunConfig(), ["training.epochs=2", "training.learning_rate=1e-3", "data.budget=0.5",
                                           "training.group_by_length=false", "strategy=feature_extraction",
                                           "strategy.head=mlp", "task.pooling=cls", "model=some/dir"])
    assert config.training.epochs == 2 and config.training.learning_rate == 1e-3
    assert config.data.budget == 0.5 and config.training.group_by_length is False
    assert config.strategy.name == "feature_extraction" and config.strategy.options == {"head": "mlp"}
    assert config.task.options == {"pooling": "cls"} and config.model == "some/dir"


@pytest.mark.parametrize(("override", "message"), [
    ("training.epochs=two", "expected an integer"),
    ("training.epoch=2", "did you mean 'training.epochs'"),
    ("trainin.epochs=2", "did you mean 'training.epochs'"),
    ("data.format=xml", "is not one of"),
    ("noequals", "expected KEY=VALUE"),
])
def test_bad_overrides(override: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        apply_overrides(RunConfig(), [override])


def test_strategy_and_task_options_are_validated_against_their_config() -> None:
    with pytest.raises(UserError, match="did you mean 'freeze_layers'"):
        components(apply_overrides(RunConfig(), ["strategy.freeze_layer=1"]))
    with pytest.raises(UserError, match="'median' is not one of"):
        components(apply_overrides(RunConfig(), ["task.pooling=median"]))
    resolved = components(RunConfig()).resolved(RunConfig())
    assert resolved["strategy"] == {"name": "finetune", "freeze_layers": 0, "layerwise_lr_decay": 1.0,
                                    "gradual_unfreeze": False}


def test_unknown_top_level_key_in_yaml() -> None:
    with pytest.raises(UserError, match="run.yaml: unknown key 'modle'.*did you mean 'model'"):
        RunConfig.from_dict({"modle": "x"}, source="run.yaml")
