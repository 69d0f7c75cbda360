"""Every bad input: one-line error naming the file/row/field, exit code 2, no traceback, no run dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.helpers import run_cli
from transferkit.cli.main import main
from transferkit.testing import make_pickle_only_model, make_weightless_model


def write(path, text: str | bytes) -> str:
    mode = "wb" if isinstance(text, bytes) else "w"
    with open(path, mode) as handle:
        handle.write(text)
    return str(path)


GOOD_ROWS = "sentence,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(6))


def assert_user_error(code: int, err: str, output: str, *needles: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not os.path.exists(output) and not os.path.exists(output + ".partial")


def train_args(tiny_model: str, train: str, output: str, *extra: str) -> list[str]:
    return ["train", "--model", tiny_model, "--strategy", "finetune", "--train", train, "--text-column", "sentence",
            "--output", output, "--set", "training.epochs=1", "--set", "training.progress=false", *extra]


CASES = {
    "missing file": (None, ["file not found", "nope.csv"]),
    "empty file": ("", ["empty"]),
    "missing text column": ("text,label\nhello,pos\nbye,neg\n", ["sentence", "columns found", "'text', 'label'"]),
    "ragged row": ("sentence,label\ngood,pos\nbad,neg,extra\n", ["line 3", "expected 2 fields"]),
    "empty text": ("sentence,label\ngood,pos\n  ,neg\n", ["line 3", "empty"]),
    "single class": ("sentence,label\ngood,pos\nfine,pos\ngreat,pos\n", ["single class", "pos"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_training_file(case, tmp_path, tiny_model, capsys, monkeypatch) -> None:
    content, needles = CASES[case]
    train = str(tmp_path / "nope.csv") if content is None else write(tmp_path / "train.csv", content)
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(tiny_model, train, output), capsys, monkeypatch)
    assert_user_error(code, err, output, *needles)


def test_missing_label_column(tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(tiny_model, train, output, "--label-column", "stars"), capsys, monkeypatch)
    assert_user_error(code, err, output, "stars", "'sentence', 'label'")


def test_invalid_jsonl_line(tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.jsonl", '{"sentence": "good", "label": 1}\n{"sentence": "bad", label: 0}\n')
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(tiny_model, train, output), capsys, monkeypatch)
    assert_user_error(code, err, output, "train.jsonl", "line 2")


def test_nan_text_in_jsonl(tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.jsonl", '{"sentence": "good", "label": 1}\n{"sentence": NaN, "label": 0}\n')
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(tiny_model, train, output), capsys, monkeypatch)
    assert_user_error(code, err, output, "train.jsonl", "line 2")


def test_non_utf8_bytes(tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.csv", b"sentence,label\ngood,pos\ncaf\xe9 bad,neg\n")
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(tiny_model, train, output), capsys, monkeypatch)
    assert_user_error(code, err, output, "train.csv", "line 3", "UTF-8")


def test_eval_label_never_seen_in_training(tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    evaluation = write(tmp_path / "eval.csv", "sentence,label\ngood,pos\nmeh,neutral\n")
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(tiny_model, train, output, "--eval", evaluation), capsys, monkeypatch)
    assert_user_error(code, err, output, "eval.csv", "neutral", "line 3")


def test_budget_larger_than_a_class(tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(tiny_model, train, output, "--set", "data.budget=50"), capsys, monkeypatch)
    assert_user_error(code, err, output, "data.budget=50", "has only")


@pytest.mark.parametrize(("flag", "value", "needles"), [
    ("--strategy", "finetunez", ["unknown strategy 'finetunez'", "did you mean 'finetune'", "tfidf"]),
    ("--model", "minilm-l7", ["minilm-l6"]),
])
def test_unknown_names(flag, value, needles, tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    output = str(tmp_path / "run")
    args = train_args(tiny_model, train, output)
    args[args.index(flag) + 1] = value
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert_user_error(code, err, output, *needles)


@pytest.mark.parametrize(("key", "suggestion"), [
    ("strategy.freez_layers=2", "freeze_layers"), ("training.epoch=2", "training.epochs"), ("data.budjet=4", "data.budget"),
])
def test_unknown_set_key_suggests_closest(key, suggestion, tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(tiny_model, train, output, "--set", key), capsys, monkeypatch)
    assert_user_error(code, err, output, f"did you mean '{suggestion}'")


@pytest.mark.parametrize(("maker", "needles"), [
    (make_weightless_model, ["no model weights"]),
    (make_pickle_only_model, ["pytorch_model.bin", "never unpickles"]),
])
def test_unsafe_or_empty_model_dir(maker, needles, tmp_path, capsys, monkeypatch) -> None:
    model = maker(tmp_path / "model")
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(model, train, output), capsys, monkeypatch)
    assert_user_error(code, err, output, *needles)


def test_resume_without_checkpoint_starts_from_the_beginning(tmp_path, tiny_model, capsys, monkeypatch) -> None:
    """A job preempted before its first checkpoint can rerun the same command with --resume."""
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    output = str(tmp_path / "run")
    os.makedirs(output + ".partial")  # killed while starting: a work directory without a checkpoint
    code, _, _ = run_cli(train_args(tiny_model, train, output, "--resume"), capsys, monkeypatch)
    assert code == 0 and os.path.isfile(os.path.join(output, "metrics.json"))
    with open(os.path.join(output, "train.log"), encoding="utf-8") as log:
        assert "starting from the beginning" in log.read()


def test_real_process_prints_one_line_and_exits_2(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "transferkit.cli.main", "train", "--train", str(tmp_path / "x.csv"),
                             "--output", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: file not found: {tmp_path / 'x.csv'}"]


def test_good_run_then_evaluate_and_predict(tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    output = str(tmp_path / "run")
    monkeypatch.setattr(sys, "argv", ["transferkit", *train_args(tiny_model, train, output)])
    main()
    assert json.loads(capsys.readouterr().out)["output"] == output
    monkeypatch.setattr(sys, "argv", ["transferkit", "evaluate", output, "--data", train])
    main()
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"accuracy", "macro_f1", "roc_auc", "confusion_matrix", "ci95"}
    predictions = str(tmp_path / "pred.jsonl")
    monkeypatch.setattr(sys, "argv", ["transferkit", "predict", output, "--input", train, "--output", predictions])
    main()
    with open(predictions) as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) == 12 and set(rows[0]["probabilities"]) == {"neg", "pos"}
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in rows)


def test_set_mixed_precision_no_is_accepted(tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    output = str(tmp_path / "run")
    code, out, err = run_cli(train_args(tiny_model, train, output, "--set", "training.mixed_precision=no"),
                             capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["output"] == output
    with open(os.path.join(output, "config.yaml"), encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["training"]["mixed_precision"] == "no"


@pytest.mark.parametrize("value", ["yes", "off"])
def test_bool_option_given_yes_or_off(value, tmp_path, tiny_model, capsys, monkeypatch) -> None:
    train = write(tmp_path / "train.csv", GOOD_ROWS)
    output = str(tmp_path / "run")
    code, _, err = run_cli(train_args(tiny_model, train, output, "--set", f"training.group_by_length={value}"),
                           capsys, monkeypatch)
    assert_user_error(code, err, output, "training.group_by_length", f"expected true/false, got '{value}'")
