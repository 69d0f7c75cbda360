"""``advise``: successive halving over strategies x shortlisted models, its files, resuming, the time limit, the CLI
and its bad-input errors (a tiny model and toy data: the whole file runs in well under a minute)."""

from __future__ import annotations

import csv
import html
import json
import math
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import one_line_error, run_cli
from transferkit.experiments import advise_search
from transferkit.experiments.advise import advise, rung_budgets
from transferkit.testing import write_toy_csv

KEYS = {"model", "strategy", "options", "score", "ci", "metric", "command", "rungs", "pruned", "cut_by_time",
        "minutes_used"}


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> dict[str, Any]:
    """One search: finetune and feature_extraction on the tiny model, plus tfidf (3 arms, η = 2: rungs of 3, 2, 1)."""
    root = tmp_path_factory.mktemp("advise")
    train = write_toy_csv(str(root / "train.csv"), 200, seed=0)
    options = {"models": [tiny_model], "strategies": ["finetune", "feature_extraction", "tfidf"],
               "data": {"text_column": "sentence"}, "output": str(root / "out"), "eta": 2, "progress": False,
               "cache_dir": str(root / "cache")}
    return {"train": train, "options": options, "root": root, "result": advise(train, 5, **options)}


def _ranked_labels(arms: list[dict[str, Any]]) -> list[str]:
    return [a["arm"] for a in sorted(arms, key=lambda a: (a["score"] is None, -(a["score"] or 0.0), a["seconds"]))]


def test_rung_budgets_follow_the_halving_schedule() -> None:
    assert rung_budgets(9, 3, 100, 8) == [12, 34, None]  # R = ⌈log_3 9⌉ = 2 rungs after the first
    assert rung_budgets(10, 3, 100, 8) == [8, 12, 34, None]  # 4 rungs; never below the smallest
    assert rung_budgets(1, 3, 100, 8) == [None]


def test_rung0_cost_model_scales_each_strategy_by_model_size(tmp_path) -> None:
    """A strategy measured on the small model predicts it on the big one (× the compute ratio); an unmeasured strategy
    takes the same model's mean, else the probe scaled; an arm without a source model costs what such arms cost."""
    Arm, ArmRun = advise_search.Arm, advise_search.ArmRun
    plan = advise_search.SearchPlan(lambda *a: {}, [None], [10], "accuracy", 3, str(tmp_path), 60.0, 0.0,
                                    sizes={"small": 1.0, "big": 8.0})
    search = advise_search.Search(plan, bar=None)

    def done(strategy: str, model: str | None, seconds: float) -> ArmRun:
        return ArmRun(Arm(strategy, model), 0, 4, "run", 0.5, None, seconds, 10, False)

    probe = done("finetune", "small", 10.0)
    assert search.rung0_estimate(Arm("lora", "big"), [probe]) == pytest.approx(80.0)
    measured = [probe, done("contrastive", "small", 50.0), done("tfidf", None, 2.0)]
    assert search.rung0_estimate(Arm("contrastive", "big"), measured) == pytest.approx(400.0)
    assert search.rung0_estimate(Arm("lora", "small"), measured) == pytest.approx(30.0)  # mean of small's runs
    assert search.rung0_estimate(Arm("tfidf", None), measured) == pytest.approx(2.0)
    assert search.rung0_estimate(Arm("tfidf", None), [probe]) == 0.0
    arms = [Arm("finetune", "big"), Arm("finetune", "small"), Arm("tfidf", None)]
    assert [a.label for a in advise_search.rung0_order(arms, plan.sizes)] == [
        "tfidf", "finetune on small", "finetune on big"]


def test_a_carried_run_does_not_make_the_next_rung_look_free(tmp_path) -> None:
    """Small data: rung 1's budget equals rung 0's, so the arm's run is carried (cost 0); rung 2's estimate must scale
    the run that was trained (seconds × growth of examples), not the carried record's zero."""
    Arm, ArmRun = advise_search.Arm, advise_search.ArmRun
    plan = advise_search.SearchPlan(lambda *a: {}, [4, 4, None], [8, 8, 80], "accuracy", 3, str(tmp_path), 60.0, 0.0)
    search = advise_search.Search(plan, bar=None)
    arm = Arm("contrastive", "m")
    trained = ArmRun(arm, 0, 4, "run", 0.7, None, 240.0, 8, False)
    search._last[arm] = search._done[arm, 0] = trained
    carried = search.run_arm(arm, 1)
    assert carried.reused and carried.seconds == 0.0
    assert search.estimate(arm, 2, [], trained) == pytest.approx(2400.0)


def test_search_halves_and_writes_its_evidence(search: dict[str, Any]) -> None:
    result, output = search["result"], Path(search["options"]["output"])
    assert set(result) >= KEYS
    assert json.loads((output / "recommendation.json").read_text()) == result
    rungs = result["rungs"]
    assert [len(rung["arms"]) for rung in rungs] == [math.ceil(3 / 2 ** r) for r in range(3)] == [3, 2, 1]
    budgets = [rung["budget"] for rung in rungs]
    assert budgets[-1] is None and 8 <= budgets[0] < budgets[1]
    for rung, following in zip(rungs, rungs[1:], strict=False):  # the best ⌈n/η⌉ go on, the others are pruned
        keep = math.ceil(len(rung["arms"]) / 2)
        assert {a["arm"] for a in following["arms"]} == set(_ranked_labels(rung["arms"])[:keep])
        dropped = [p for p in result["pruned"] if p["rung"] == rung["rung"]]
        assert {p["arm"] for p in dropped} == set(_ranked_labels(rung["arms"])[keep:]) and dropped[0]["reason"]
    (last,) = rungs[-1]["arms"]
    assert (result["strategy"], result["model"], result["score"]) == (last["strategy"], last["model"], last["score"])
    assert result["metric"] == "accuracy" and len(result["ci"]) == 2 and not result["cut_by_time"]
    held_out = {json.loads((Path(a["run"]) / "metrics.json").read_text())["eval"]["num_examples"]
                for rung in rungs for a in rung["arms"]}
    assert held_out == {40}  # every arm is scored on the same 20% of the 200 rows
    page = (output / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "ranked" in page and "logme" in page
    assert "finetune on " in page and html.escape(result["command"]) in page


def test_the_command_trains_the_pick(search: dict[str, Any], capsys, monkeypatch) -> None:
    words = shlex.split(search["result"]["command"])
    assert words[:2] == ["transferkit", "train"] and "--text-column" in words
    words[words.index("--output") + 1] = str(search["root"] / "final")
    code, out, err = run_cli([*words[1:], "--set", "training.epochs=1"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["output"] == str(search["root"] / "final")


def test_resuming_reuses_every_run_and_the_cli_prints_the_pick(search: dict[str, Any], capsys, monkeypatch) -> None:
    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(advise_search.run, "train", no_training)
    again = advise(search["train"], 5, **search["options"])
    assert all(a["reused"] for rung in again["rungs"] for a in rung["arms"])
    assert (again["strategy"], again["model"], again["score"]) == tuple(search["result"][k] for k in
                                                                         ("strategy", "model", "score"))
    options = search["options"]
    code, out, err = run_cli(["advise", "--train", search["train"], "--minutes", "5", "--models", options["models"][0],
                              "--strategies", ",".join(options["strategies"]), "--text-column", "sentence", "--eta",
                              "2", "--output", options["output"], "--cache-dir", options["cache_dir"]],
                             capsys, monkeypatch)
    assert code == 0, err
    assert "recommendation:" in out and search["result"]["command"] in out and "report.html" in out


def test_time_limit_cuts_the_search_to_the_last_complete_rung(search: dict[str, Any], tmp_path, monkeypatch) -> None:
    output = tmp_path / "cut"
    shutil.copytree(search["options"]["output"], output)
    for finished in output.glob("runs/rung[12]-*"):
        shutil.rmtree(finished)
    monkeypatch.setattr(advise_search.Search, "estimate", lambda self, arm, rung, *_: 1e9 if rung else 0.0)
    result = advise(search["train"], 5, **{**search["options"], "output": str(output)})
    assert result["cut_by_time"] and result["cut_at"]["rung"] == 1 and len(result["rungs"]) == 2
    pick = result["strategy"] if result["model"] is None else f"{result['strategy']} on {result['model']}"
    assert result["rung"] == 0 and pick == _ranked_labels(result["rungs"][0]["arms"])[0]
    assert "cut by the time limit" in (output / "report.html").read_text()


def test_an_arm_too_dear_for_rung_0_is_skipped_and_the_search_goes_on(search: dict[str, Any], tmp_path,
                                                                     monkeypatch) -> None:
    """A rung-0 arm whose estimate does not fit is not started, the cheaper arms after it still run and halving goes on
    over the arms that ran; the report lists it as not started."""
    output = tmp_path / "skip"
    estimate = advise_search.Search.estimate

    def dear_finetune(self, arm, rung, *rest):
        return 1e9 if rung == 0 and arm.strategy == "finetune" else estimate(self, arm, rung, *rest)

    monkeypatch.setattr(advise_search.Search, "estimate", dear_finetune)
    monkeypatch.setattr("transferkit.experiments.advise._calibrate",
                        lambda search, arms, minutes, seconds: {"result": search.run_arm(arms[0], 0), "seconds": 0.0})
    result = advise(search["train"], 5, **{**search["options"], "output": str(output)})
    ran = {record["strategy"] for record in result["rungs"][0]["arms"]}
    assert "finetune" not in ran and {"tfidf", "feature_extraction"} <= ran, ran
    assert result["cut_by_time"] and result["cut_at"] is None and len(result["rungs"]) >= 2
    skipped = [p for p in result["pruned"] if p["reason"].startswith("not started")]
    assert [p["strategy"] for p in skipped] == ["finetune"]
    assert "not started" in (output / "report.html").read_text()


def _one_class(path: Path) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        writer.writerows([[f"a good film {i}", "pos"] for i in range(40)])
    return str(path)


def test_bad_input_is_one_line(search: dict[str, Any], tiny_model: str, tiny_vectors: str, tmp_path, capsys,
                               monkeypatch) -> None:
    train, base = search["train"], {**search["options"], "output": str(tmp_path / "bad")}
    one_line_error(lambda: advise(train, 5, **{**base, "strategies": ["finetune", "nope"]}), "nope", "tfidf")
    one_line_error(lambda: advise(train, 5, **{**base, "models": ["no-such-model"]}), "unknown model", "minilm-l6")
    one_line_error(lambda: advise(train, 5, **{**base, "models": [tiny_vectors]}), "word_vectors")
    one_line_error(lambda: advise(_one_class(tmp_path / "one.csv"), 5, **base), "single class")
    one_line_error(lambda: advise(train, 5, **{**base, "data": {"text_column": "sentence", "budget": 4}}), "budget")
    one_line_error(lambda: advise(train, 0, **base), "--minutes")
    small = {**base, "strategies": ["feature_extraction", "tfidf"]}
    message = one_line_error(lambda: advise(train, 0.001, **small), "too small", "no time to compare", "2 arms")
    least = float(re.search(r"at least --minutes ([\d.]+)", message).group(1))
    assert least > 0.001
    common = ["advise", "--train", train, "--text-column", "sentence", "--output", base["output"]]
    for extra, fragment in ((["--minutes", "5", "--models", tiny_model, "--strategies", "finetune,nope"], "nope"),
                            (["--minutes", "5", "--models", "no-such-model"], "unknown model"),
                            (["--minutes", "0.001", "--eta", "2", "--models", tiny_model,
                              "--strategies", "feature_extraction,tfidf"], "too small")):
        code, _, err = run_cli([*common, *extra], capsys, monkeypatch)
        assert code == 2 and fragment in err and "Traceback" not in err, err
