"""RunConfig: YAML round trip, dotted overrides, type coercion, suggestions."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import one_line_error
from transferkit.core.config import RunConfig, apply_overrides, parse_override
from transferkit.core.errors import UserError
from transferkit.core.yaml_config import load_yaml, read_yaml_file
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
                                    "gradual_unfreeze": False, "freeze_word_embeddings": "auto"}


def test_unknown_top_level_key_in_yaml() -> None:
    with pytest.raises(UserError, match="run.yaml: unknown key 'modle'.*did you mean 'model'"):
        RunConfig.from_dict({"modle": "x"}, source="run.yaml")


# --- YAML 1.2 booleans: yes/no/on/off are strings, so string-typed options take them -------------------------


def test_set_mixed_precision_no_is_the_string() -> None:
    config = apply_overrides(RunConfig(), ["training.mixed_precision=no"])
    assert config.training.mixed_precision == "no"


def test_yaml_file_mixed_precision_no_is_the_string(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model: m\ntraining:\n  mixed_precision: no\n  group_by_length: False\n  progress: TRUE\n")
    config = RunConfig.from_dict(read_yaml_file(str(path), "config file"), source=str(path))
    assert config.training.mixed_precision == "no"
    assert config.training.group_by_length is False and config.training.progress is True


@pytest.mark.parametrize("override", ["training.group_by_length=yes", "training.progress=off",
                                      "strategy.gradual_unfreeze=on"])
def test_bool_option_given_yes_is_a_one_line_error(override: str) -> None:
    value = override.split("=")[1]
    one_line_error(lambda: components(apply_overrides(RunConfig(), [override])), "expected true/false", repr(value))


def test_bool_option_given_yes_in_a_yaml_file(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  group_by_length: yes\n")
    one_line_error(lambda: RunConfig.from_dict(read_yaml_file(str(path), "config file"), source=str(path)),
                   "training.group_by_length", "expected true/false, got 'yes'")


def test_config_loader_reads_only_true_false_as_booleans() -> None:
    assert load_yaml("[true, True, TRUE, false, False, FALSE]") == [True] * 3 + [False] * 3
    words = ["yes", "no", "on", "off", "Yes", "NO", "Off", "y", "n"]
    assert load_yaml(f"[{', '.join(words)}]") == words
    assert load_yaml("{a: 2, b: 1.5e-3, c: null, d: [x]}") == {"a": 2, "b": 1.5e-3, "c": None, "d": ["x"]}
    assert yaml.safe_load("no") is False  # PyYAML's own loader is untouched


@pytest.mark.parametrize("text", ["no", "yes", "on", "off", "true", "False", "null", "1e-3", "2", "tRuE"])
def test_strings_dumped_by_safe_dump_read_back_unchanged(text: str) -> None:
    assert load_yaml(yaml.safe_dump(text)) == text
    assert parse_override("strategy.x=" + yaml.safe_dump(text).strip().removesuffix("...").strip())[1] == text
