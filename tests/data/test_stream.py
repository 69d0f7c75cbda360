"""data.stream: stages read, split and sampled like data.train; labels per continual.setting; one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import one_line_error
from transferkit.core.config import DataConfig, RunConfig, apply_overrides
from transferkit.core.errors import UserError
from transferkit.data.stream import concat_examples, read_stream
from transferkit.data.task_splits import load_text_splits
from transferkit.tasks.classification import ClassificationTask


def write(path: Path, labels: list[object], sep: str = ",", header: tuple[str, ...] = ("text", "label")) -> str:
    """A file with one row per label: ``"<stem> example <i>"`` and the label."""
    lines = [sep.join(header)] + [f"{path.stem} example {i}{sep}{label}" for i, label in enumerate(labels)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def stage(tmp_path: Path, name: str, labels: list[object], per_class: int = 10, **extra: object) -> dict[str, object]:
    """A stage mapping: ``per_class`` training rows and 2 test rows of every label; csv, or tsv for ``*_tsv`` names."""
    sep, ext = ("\t", "tsv") if name.endswith("_tsv") else (",", "csv")
    train = write(tmp_path / f"{name}.{ext}", [label for _ in range(per_class) for label in labels], sep)
    test = write(tmp_path / f"{name}_test.{ext}", [label for _ in range(2) for label in labels], sep)
    return {"path": train, "test": test, **extra}


def data(stages: list[dict[str, object]], **options: object) -> DataConfig:
    return DataConfig(stream=stages, **options)  # type: ignore[arg-type]


# ---- labels -----------------------------------------------------------------------------------------------------------
def test_class_setting_prefixes_each_stage_and_accumulates_labels(tmp_path: Path) -> None:
    splits = read_stream(data([stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", ["z", "x", "y"])]), "auto", 0)
    assert splits.stream is not None and splits.stream.setting == "class"
    assert splits.labels == ["a:0", "a:1", "b:x", "b:y", "b:z"]
    first, second = splits.stream.stages
    assert (first.name, first.classes, second.name, second.classes) == ("a", [0, 1], "b", [2, 3, 4])
    assert set(second.train.labels) == {2, 3, 4} and set(second.test.labels) == {2, 3, 4}
    assert second.test.texts[0] == "b_test example 0" and second.test.labels[0] == 4  # the first test row is "z"
    assert list(splits.tests) == ["a", "b"] and splits.tests["b"] is second.test
    assert len(splits.train) == len(first.train) + len(second.train) == 18 + 27
    assert splits.train.labels == first.train.labels + second.train.labels
    assert len(splits.eval) == len(first.eval) + len(second.eval) == 2 + 3


def test_domain_setting_shares_labels_after_an_int_keyed_label_map(tmp_path: Path) -> None:
    raw = yaml.safe_load("{0: negative, 1: positive}")  # YAML gives int keys
    stages = [stage(tmp_path, "sst", [1, 0], label_map=raw), stage(tmp_path, "imdb_tsv", ["positive", "negative"])]
    splits = read_stream(data(stages), "auto", 0)
    assert splits.stream is not None and splits.stream.setting == "domain"
    assert splits.labels == ["negative", "positive"]
    assert [s.classes for s in splits.stream.stages] == [[0, 1], [0, 1]]
    assert [s.name for s in splits.stream.stages] == ["sst", "imdb_tsv"]
    assert splits.tests["sst"].labels[:2] == [1, 0] and splits.tests["imdb_tsv"].labels[:2] == [1, 0]


def test_forced_class_setting_keeps_equal_label_sets_apart_and_shares_mapped_names(tmp_path: Path) -> None:
    same = read_stream(data([stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", [0, 1])]), "class", 0)
    assert same.labels == ["a:0", "a:1", "b:0", "b:1"]
    mapped = [stage(tmp_path, "a", [0, 1], label_map={0: "neg", 1: "pos"}), stage(tmp_path, "b", ["x", "y"]),
              stage(tmp_path, "c", ["n", "p"], label_map={"n": "neg", "p": "pos"})]
    splits = read_stream(data(mapped), "auto", 0)
    assert splits.labels == ["neg", "pos", "b:x", "b:y"]
    assert splits.stream is not None and [s.classes for s in splits.stream.stages] == [[0, 1], [2, 3], [0, 1]]


def test_task_setting_keeps_every_stage_apart_even_with_a_label_map(tmp_path: Path) -> None:
    """``task``: a head per stage, so every label is ``STAGE:LABEL`` (a label_map renames within its stage only); a
    test set of no stage is refused; ``auto`` never resolves to it."""
    mapped = [stage(tmp_path, "a", [0, 1], label_map={0: "neg", 1: "pos"}),
              stage(tmp_path, "c", ["n", "p"], label_map={"n": "neg", "p": "pos"})]
    splits = read_stream(data(mapped), "task", 0)
    assert splits.stream is not None and splits.stream.setting == "task"
    assert splits.labels == ["a:neg", "a:pos", "c:neg", "c:pos"]
    assert [s.classes for s in splits.stream.stages] == [[0, 1], [2, 3]]
    assert read_stream(data(mapped), "auto", 0).stream.setting == "domain"
    extra = write(tmp_path / "extra.csv", ["neg", "pos"])
    one_line_error(lambda: read_stream(data(mapped, test=extra), "task", 0), "data.test (test)", "continual.setting=task")


# ---- splits, budgets, caps ---------------------------------------------------------------------------------------------
def test_each_stage_holds_out_eval_exactly_like_data_train(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", ["x", "y", "z"])]
    splits = read_stream(data(stages, eval_fraction=0.2), "auto", 0)
    assert splits.stream is not None
    assert [(len(s.train), len(s.eval)) for s in splits.stream.stages] == [(16, 4), (24, 6)]
    alone = load_text_splits(DataConfig(train=str(stages[1]["path"]), eval_fraction=0.2), 0)
    assert splits.stream.stages[1].eval.texts == alone.eval.texts and splits.stream.stages[1].train.texts == alone.train.texts


def test_budget_and_caps_apply_per_stage(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", ["x", "y", "z"])]
    budgeted = read_stream(data(stages, budget=3, max_eval_examples=2), "auto", 7)
    assert budgeted.stream is not None
    assert [(len(s.train), len(s.eval)) for s in budgeted.stream.stages] == [(6, 2), (9, 2)]
    assert len(budgeted.train) == 15 and len(budgeted.eval) == 4
    capped = read_stream(data(stages, max_train_examples=4), "auto", 7)
    assert capped.stream is not None and [len(s.train) for s in capped.stream.stages] == [4, 4]


def test_extra_test_sets_are_encoded_against_the_union(tmp_path: Path) -> None:
    extra = write(tmp_path / "extra.csv", ["b:y", "a:0"])
    splits = read_stream(data([stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", ["x", "y"])], test={"all": extra}),
                         "auto", 0)
    assert list(splits.tests) == ["a", "b", "all"] and splits.tests["all"].labels == [3, 0]


def test_concat_examples_keeps_pairs_rows_and_order() -> None:
    from transferkit.core.contracts import TextExamples

    joined = concat_examples([TextExamples(["a"], [0], ["p"], [2], "x.csv"), TextExamples(["b", "c"], [1, 2], ["q", "r"],
                                                                                       [2, 3], "y.csv")])
    assert (joined.texts, joined.labels, joined.text_pairs, joined.rows) == (["a", "b", "c"], [0, 1, 2], ["p", "q", "r"],
                                                                              [2, 2, 3])
    assert joined.source == "x.csv + y.csv"


# ---- bad input: one line naming the stage, the file and the field ------------------------------------------------------
def test_a_missing_file_names_the_stage(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", [0, 1]), {"path": str(tmp_path / "gone.csv"), "test": str(tmp_path / "a_test.csv")}]
    one_line_error(lambda: read_stream(data(stages), "auto", 0), "data.stream[1] (gone)", "gone.csv", "not found")


def test_a_missing_column_names_the_stage_file_and_field(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", [0, 1], label_column="gold")]
    one_line_error(lambda: read_stream(data(stages), "auto", 0), "data.stream[1] (b)", "b.csv", "'gold'",
                   "data.stream[1].label_column")


@pytest.mark.parametrize(("stages", "options", "message"), [
    ([0], {}, r"data\.stream has 1 stage\(s\); a stream needs at least 2 stages"),
    ([0, 0], {}, r"data\.stream\[1\] \(a\): same name as data\.stream\[0\]"),
    ([0, 1], {"train": "t.csv"}, r"data\.stream and data\.train are both set: set either"),
    ([0, 1], {"eval": "e.csv"}, r"data\.stream and data\.eval are both set: set either"),
    ([0, 1], {"test": {"b": "t.csv"}}, r"data\.test\.b: same name as the test set of data\.stream\[1\] \(b\)"),
])
def test_bad_streams(tmp_path: Path, stages: list[int], options: dict[str, object], message: str) -> None:
    available = [stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", ["x", "y"])]
    with pytest.raises(UserError, match=message):
        read_stream(data([available[i] for i in stages], **options), "auto", 0)


def test_a_stage_without_test_names_the_stage_and_its_file(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", [0, 1]), {"path": stage(tmp_path, "b", [0, 1])["path"]}]
    with pytest.raises(UserError, match=r"data\.stream\[1\] \(b\): no test file for .*b\.csv.*set data\.stream\[1\]\.test"):
        read_stream(data(stages), "auto", 0)


def test_an_unmapped_label_names_the_stage_file_and_label(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", [0, 1], label_map={0: "neg", 1: "pos"})]
    write(tmp_path / "b_test.csv", [0, 1, 2])
    message = one_line_error(lambda: read_stream(data(stages), "auto", 0), "data.stream[1] (b)", "b_test.csv",
                             "'2'", "data.stream[1].label_map")
    assert "not in label_map" in message


def test_domain_setting_with_different_labels_names_both_stages_and_label_sets(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", ["neg", "pos"]), stage(tmp_path, "b", ["x", "y"])]
    one_line_error(lambda: read_stream(data(stages), "domain", 0), "data.stream[1] (b) has 'x', 'y'",
                   "data.stream[0] (a) 'neg', 'pos'", "data.stream[1].label_map", "continual.setting=class")


def test_a_test_label_the_stage_never_trained_on_names_the_stage(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", ["x", "y"])]
    write(tmp_path / "b_test.csv", ["x", "w"])
    one_line_error(lambda: read_stream(data(stages), "auto", 0), "data.stream[1] (b)", "b_test.csv", "'b:w'")


def test_mixed_single_texts_and_pairs_is_an_error(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", [0, 1], text_pair_column="hypothesis")]
    one_line_error(lambda: read_stream(data(stages), "auto", 0), "data.stream[1] (b) reads text pairs",
                   "data.stream[0] (a) single texts")


def test_other_tasks_refuse_a_stream(tmp_path: Path) -> None:
    from transferkit.data.task_splits import require_train

    one_line_error(lambda: require_train(data([stage(tmp_path, "a", [0, 1])])), "classification task only")


# ---- continual.setting in the run config -------------------------------------------------------------------------------
def test_continual_setting_from_yaml_and_set_reaches_the_task(tmp_path: Path) -> None:
    stages = [stage(tmp_path, "a", [0, 1]), stage(tmp_path, "b", [0, 1])]
    config = RunConfig.from_dict(yaml.safe_load(yaml.safe_dump({"data": {"stream": stages},
                                                                "continual": {"setting": "domain"}})))
    assert config.continual.setting == config.data.stream_setting == "domain"
    assert RunConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config
    apply_overrides(config, ["continual.setting=class"])
    assert config.data.stream_setting == "class"
    splits = ClassificationTask.read_splits(config.data, ClassificationTask.Config(), 0)
    assert splits.labels == ["a:0", "a:1", "b:0", "b:1"]


def test_continual_setting_is_a_grid_axis_and_data_stream_setting_is_only_a_copy() -> None:
    from transferkit.experiments.grid import check_axis_key

    assert check_axis_key("continual.setting", "grid") == "continual.setting"
    with pytest.raises(UserError, match="is not one of"):
        apply_overrides(RunConfig(), ["continual.setting=tasks"])
    assert apply_overrides(RunConfig(), ["continual.setting=task"]).data.stream_setting == "task"
    with pytest.raises(UserError, match="use --set continual.setting"):
        apply_overrides(RunConfig(), ["data.stream_setting=class"])
    with pytest.raises(UserError, match="set continual.setting: class instead"):
        RunConfig.from_dict({"data": {"stream_setting": "class"}})
