"""``transferkit tune``: the spec and its bad input, a small study (run dirs, rows, best.json, report), continuing a
study, pruning (the callback alone and end to end on a tiny model)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.helpers import one_line_error, one_torch_thread, run_cli
from transferkit.core.contracts import TrainState
from transferkit.core.results import ResultsStore
from transferkit.experiments.tune import tune
from transferkit.experiments.tune_spec import SearchParam, load_tune_spec, parse_tune_spec
from transferkit.experiments.tune_trial import PruneOnEval, eval_value

optuna = pytest.importorskip("optuna")


def tfidf_base(toy_files: dict[str, str]) -> dict:
    return {"strategy": "tfidf", "data": {"train": toy_files["train"], "eval": toy_files["eval"],
                                          "text_column": "sentence"}}


def tfidf_spec(toy_files: dict[str, str], **changes) -> dict:
    return {"base": tfidf_base(toy_files), "metric": "accuracy", "direction": "maximize",
            "search": {"strategy.C": {"log_uniform": [0.001, 100]}, "strategy.ngram_max": {"int": [1, 3]}}, **changes}


def test_a_spec_file_reads_its_base_relative_to_itself(toy_files, tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.yaml").write_text(yaml.safe_dump(tfidf_base(toy_files)))
    raw = {"base": "configs/base.yaml", "metric": "macro_f1",
           "search": {"strategy.C": {"uniform": ["1e-2", 10]}, "strategy.sublinear_tf": {"choice": [True, False]},
                      "data.budget": {"int": [4, 8]}, "training.seed": {"choice": [1, 2]}}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    spec = load_tune_spec(str(tmp_path / "spec.yaml"))
    assert spec.direction == "maximize" and spec.metric == "macro_f1"
    assert spec.search["strategy.C"] == SearchParam("uniform", (0.01, 10.0))
    assert spec.search["data.budget"] == SearchParam("int", (4, 8))
    config = spec.trial_config({"strategy.C": 0.5, "data.budget": 6, "training.seed": 2}, "out/trial-0001")
    assert config.strategy.options["C"] == 0.5 and config.data.budget == 6 and config.training.seed == 2
    assert config.output == "out/trial-0001" and config.data.train == toy_files["train"]


@pytest.mark.parametrize(("search", "fragments"), [
    ({"training.lerning_rate": {"log_uniform": [1e-5, 1e-3]}},
     ["search.training.lerning_rate", "unknown key", "did you mean 'training.learning_rate'"]),
    ({"strategy.CC": {"uniform": [1, 2]}}, ["search.strategy.CC", "unknown key 'CC'"]),
    ({"modle": {"choice": ["a"]}}, ["search.modle", "unknown key 'modle'", "did you mean 'model'"]),
    ({"strategy.ngram_max": {"uniform": [1, 2]}}, ["search.strategy.ngram_max", "expected an integer"]),
    ({"strategy.C": {"uniform": [2, 2]}}, ["search.strategy.C", "range [2, 2] is empty or reversed"]),
    ({"strategy.C": {"log_uniform": [10, 0.1]}}, ["search.strategy.C", "empty or reversed"]),
    ({"strategy.C": {"log_uniform": [0, 1]}}, ["search.strategy.C", "log_uniform bounds must be > 0"]),
    ({"strategy.C": {"log_uniform": [-1, 1]}}, ["log_uniform bounds must be > 0"]),
    ({"strategy.C": {"loguniform": [0.1, 1]}}, ["unknown distribution 'loguniform'", "did you mean 'log_uniform'"]),
    ({"strategy.C": {"choice": []}}, ["search.strategy.C", "choice needs a non-empty list"]),
    ({"strategy.C": {"uniform": [1]}}, ["uniform needs [low, high]"]),
    ({"strategy.C": {"uniform": ["a", 1]}}, ["bounds must be numbers"]),
    ({"strategy.ngram_max": {"int": [1.5, 3]}}, ["int bounds must be integers"]),
    ({"strategy.C": [0.1, 1]}, ["expected one distribution"]),
    ({"output": {"choice": ["a", "b"]}}, ["output cannot be searched"]),
])
def test_a_bad_search_space_is_one_line_before_any_trial(toy_files, search: dict, fragments: list[str]) -> None:
    one_line_error(lambda: parse_tune_spec(tfidf_spec(toy_files, search=search), "spec.yaml"), "spec.yaml", *fragments)


@pytest.mark.parametrize(("changes", "fragments"), [
    ({"metric": "acuracy"}, ["metric 'acuracy' is not a classification metric", "did you mean 'accuracy'",
                             "valid: accuracy, macro_f1, roc_auc"]),
    ({"direction": "up"}, ["direction must be maximize or minimize"]),
    ({"search": {}}, ["'search' must be a non-empty mapping"]),
    ({"sampler": "tpe"}, ["unknown key 'sampler'"]),
    ({"base": "no/such.yaml"}, ["base config not found"]),
    ({"base": {"strategy": "tfidff"}}, ["tfidff"]),
])
def test_a_bad_spec_is_one_line(toy_files, changes: dict, fragments: list[str]) -> None:
    one_line_error(lambda: parse_tune_spec(tfidf_spec(toy_files, **changes), "spec.yaml"), *fragments)


def test_an_unreachable_storage_is_one_line_and_runs_nothing(toy_files, tmp_path: Path) -> None:
    output = tmp_path / "study"
    one_line_error(lambda: tune(tfidf_spec(toy_files), str(output), trials=2, progress=False,
                                storage=f"sqlite:///{tmp_path}/no/such/dir/study.db"),
                   "--storage", "cannot open the study storage")
    one_line_error(lambda: tune(tfidf_spec(toy_files), str(output), trials=2, storage="nosuchdb://x/y"), "--storage")
    assert not (output / "results.sqlite").exists()
    one_line_error(lambda: tune(tfidf_spec(toy_files), str(output), trials=0), "--trials must be >= 1")
    one_line_error(lambda: tune(tfidf_spec(toy_files), str(output), trials=2, sead=1), "unknown key 'sead'")


def test_a_three_trial_study_writes_run_dirs_rows_best_json_and_a_report(toy_files, tmp_path: Path) -> None:
    output = tmp_path / "study"
    result = tune(tfidf_spec(toy_files), str(output), trials=3, study="toy", progress=False)
    assert result.counts["complete"] == 3 and result.counts["failed"] == 0
    rows = ResultsStore(str(output)).cells()
    assert [row.cell_id for row in rows] == ["trial-0000", "trial-0001", "trial-0002"]
    assert {row.status for row in rows} == {"done"}
    for row in rows:
        assert set(row.axes) == {"strategy.C", "strategy.ngram_max"} and row.metrics["tune"]["params"] == row.axes
        assert row.metrics["tune"]["value"] == row.metrics["eval"]["accuracy"]
        assert (output / row.cell_id / "metrics.json").is_file() and row.run_dir == str(output / row.cell_id)
    best = json.loads((output / "best.json").read_text())
    assert best == result.best and best["value"] == max(row.metrics["eval"]["accuracy"] for row in rows)
    assert best["run_dir"] == str(output / best["trial"]) and best["trials"]["complete"] == 3

    again = tune(tfidf_spec(toy_files), str(output), trials=3, study="toy", progress=False)  # the same command
    assert again.counts["complete"] == 3 and len(ResultsStore(str(output)).cells()) == 3
    more = tune(tfidf_spec(toy_files), str(output), trials=4, study="toy", progress=False)  # continues the study
    assert more.counts["complete"] == 4 and (output / "trial-0003").is_dir()

    from transferkit.reporting import render_report

    render_report(str(output), str(tmp_path / "report.md"))
    pictures = sorted(os.listdir(tmp_path / "report_files"))
    assert "optimisation_history.png" in pictures and "parameter_importances.png" in pictures
    text = (tmp_path / "report.md").read_text()
    assert "Optimisation history of study toy" in text and "Parameter importances (strategy." in text
    one_line_error(lambda: tune(tfidf_spec(toy_files), str(output), trials=4, study="other"),
                   "holds the trials of study 'toy'", "--study toy")


def test_the_cli_prints_a_line_per_trial_and_the_best(toy_files, tmp_path: Path, capsys, monkeypatch) -> None:
    spec = tmp_path / "toy_search.yaml"
    spec.write_text(yaml.safe_dump(tfidf_spec(toy_files)))
    code, out, err = run_cli(["tune", str(spec), "--output", str(tmp_path / "s"), "--trials", "2"], capsys, monkeypatch)
    assert code == 0, err
    assert "[trial-0000] strategy.C=" in err and "[trial-0001]" in err and "-> accuracy " in err and "; best " in err
    best = json.loads((tmp_path / "s" / "best.json").read_text())
    assert f"best: {best['trial']} accuracy" in out and best["run_dir"] in out
    assert json.loads((tmp_path / "s" / "tune.json").read_text()) == {"study": "toy_search"}  # from the file name
    code, _, err = run_cli(["tune", str(spec), "--output", str(tmp_path / "t"), "--trials", "2",
                            "--storage", "sqlite:////no/such/dir/x.db"], capsys, monkeypatch)
    assert code == 2 and err.startswith("error: --storage") and err.count("\n") == 1, err


def test_a_trial_that_fails_for_a_user_mistake_stops_the_study_with_one_line(toy_files, tmp_path: Path) -> None:
    spec = tfidf_spec(toy_files)
    spec["base"]["data"]["train"] = str(tmp_path / "missing.csv")  # read when the first trial starts
    one_line_error(lambda: tune(spec, str(tmp_path / "s"), trials=3, progress=False), "trial-0000", "missing.csv")
    assert [(row.cell_id, row.status) for row in ResultsStore(str(tmp_path / "s")).cells()] == [("trial-0000", "failed")]
    one_line_error(lambda: eval_value({"eval": {"accuracy": 0.5}}, "roc_auc", "trial-0000"),
                   "metric 'roc_auc' is not among trial-0000's eval metrics (accuracy)")


def test_crashing_trials_are_recorded_and_three_in_a_row_stop_the_study(toy_files, tmp_path: Path,
                                                                        monkeypatch) -> None:
    from transferkit.experiments import run

    def crash(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(run, "train", crash)
    one_line_error(lambda: tune(tfidf_spec(toy_files), str(tmp_path / "s"), trials=5, progress=False),
                   "3 trials in a row failed", "trial-0002: RuntimeError: out of memory")
    rows = ResultsStore(str(tmp_path / "s")).cells()
    assert [row.status for row in rows] == ["failed"] * 3 and rows[0].error == "RuntimeError: out of memory"


def test_the_pruning_callback_stops_a_trial_below_the_median() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    study.add_trial(optuna.trial.create_trial(value=0.9, intermediate_values={0: 0.8, 1: 0.9}))
    good, bad = study.ask(), study.ask()
    for trial, value in ((good, 0.85), (bad, 0.5)):
        callback, state = PruneOnEval(trial, "accuracy"), TrainState(epoch=0)
        callback.on_evaluate(state, None, {"loss": 1.0})  # an evaluation without the metric (a masked-LM stage)
        assert callback.reports == 0 and not state.should_stop
        callback.on_evaluate(state, None, {"accuracy": value})
        assert state.should_stop == (trial is bad) and callback.pruned_epoch == (1 if trial is bad else None)


def test_a_clearly_bad_trial_is_pruned_and_recorded(tiny_model, toy_files, tmp_path: Path) -> None:
    base = {"model": tiny_model, "strategy": "finetune",
            "data": {"train": toy_files["train"], "eval": toy_files["eval"], "text_column": "sentence",
                     "max_length": 32},
            "training": {"epochs": 2, "batch_size": 16, "progress": False, "checkpoint_every": 0}}
    spec = {"base": base, "metric": "accuracy", "search": {"training.learning_rate": {"log_uniform": [1e-9, 1e-2]}}}
    output = tmp_path / "study"
    output.mkdir()
    storage = f"sqlite:///{output}/study.db"
    study = optuna.create_study(study_name="prune", storage=storage, direction="maximize")
    study.enqueue_trial({"training.learning_rate": 3e-3})  # learns: 0.84 after one epoch on the toy data
    study.enqueue_trial({"training.learning_rate": 1e-9})  # does not: chance after every epoch
    with one_torch_thread():
        result = tune(spec, str(output), trials=2, study="prune", prune_startup_trials=1, progress=False)
    assert result.counts["complete"] == 1 and result.counts["pruned"] == 1
    rows = {row.cell_id: row for row in ResultsStore(str(output)).cells()}
    assert rows["trial-0000"].status == "done" and rows["trial-0001"].status == "pruned"
    pruned = rows["trial-0001"]
    assert pruned.metrics["tune"]["state"] == "pruned" and (output / "trial-0001" / "metrics.json").is_file()
    assert pruned.metrics["steps"] < rows["trial-0000"].metrics["steps"]  # stopped after its first epoch
    assert result.best["trial"] == "trial-0000"
