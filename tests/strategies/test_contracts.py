"""The contract suite: runs over every registered strategy x every task it supports."""

from __future__ import annotations

import os

import pytest

from transferkit.core.config import DataConfig, RunConfig
from transferkit.core.errors import UserError
from transferkit.data import read_table, to_examples
from transferkit.data.qa import read_squad
from transferkit.data.seq2seq import read_pairs
from transferkit.data.tagging import read_tagged
from transferkit.data.task_splits import tag_labels
from transferkit.experiments.api import evaluate_run
from transferkit.experiments.run import train
from transferkit.strategies import STRATEGIES
from transferkit.tasks import TASKS
from transferkit.testing import (
    STRATEGY_CHECKS,
    TASK_CHECKS,
    StrategyCase,
    TaskCase,
    check_strategy,
    source_model_for,
    write_toy_conll,
    write_toy_pairs,
    write_toy_squad,
)

PAIRS = [(s, t) for s in STRATEGIES.names() for t in TASKS.names() if t in STRATEGIES.get(s).supports]


def toy_examples(path: str):
    examples, labels = to_examples(read_table(path), "sentence", "label")
    return examples, labels


@pytest.fixture(scope="module")
def toy_data(toy_files: dict[str, str], tmp_path_factory) -> dict[str, dict[str, str]]:
    """Train/eval files per task: sentiment CSVs and CoNLL files of people and places."""
    root = tmp_path_factory.mktemp("toy_conll")
    return {"classification": toy_files,
            "token_classification": {"train": write_toy_conll(str(root / "train.conll"), 240, seed=0),
                                     "eval": write_toy_conll(str(root / "eval.conll"), 80, seed=1)},
            "question_answering": {"train": write_toy_squad(str(root / "train.json"), 240, seed=0),
                                   "eval": write_toy_squad(str(root / "eval.json"), 80, seed=1)},
            "summarization": {"train": write_toy_pairs(str(root / "train.jsonl"), 240, seed=0),
                              "eval": write_toy_pairs(str(root / "eval.jsonl"), 40, seed=1)}}


def task_examples(task: str, path: str):
    if task == "summarization":
        return read_pairs(path), []
    if task == "question_answering":
        return read_squad(path), ["start", "end"]
    if task == "token_classification":
        sentences = read_tagged(path)
        return sentences, tag_labels(sentences).names
    examples, labels = toy_examples(path)
    return examples, labels.names


DECLARATION_CHECKS = [c for c in STRATEGY_CHECKS if c.__name__ in ("check_declares_contract", "check_constructor_only_stores")]


@pytest.mark.parametrize("check", DECLARATION_CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_strategy_declarations(strategy: str, check, tiny_model: str, tiny_vectors: str, toy_data) -> None:
    """The declaration checks of every registered strategy, one test each (check_strategy runs them all,
    with the training checks, per (strategy, task) pair in test_check_strategy)."""
    task = sorted(STRATEGIES.get(strategy).supports)[0]
    examples, labels = task_examples(task, toy_data[task]["train"])
    source = source_model_for(STRATEGIES.get(strategy), tiny_model, tiny_vectors)
    check(StrategyCase(STRATEGIES.get(strategy), TASKS.get(task)(labels=labels), source, examples))


@pytest.mark.parametrize("check", TASK_CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("task", TASKS.names())
def test_check_task(task: str, check, tiny_model: str, toy_data) -> None:
    """Every check of the task contract, on every registered task, with its toy train/eval files."""
    files = toy_data[task]
    data = DataConfig(train=files["train"], eval=files["eval"], text_column="sentence", max_length=64)
    case = TaskCase(TASKS.get(task), tiny_model, data)
    for earlier in TASK_CHECKS[: TASK_CHECKS.index(check)]:
        earlier(case)  # later checks build on what earlier ones observed
    check(case)


@pytest.mark.parametrize(("strategy", "task"), PAIRS)
def test_check_strategy(strategy: str, task: str, tiny_model: str, tiny_vectors: str, toy_data) -> None:
    examples, labels = task_examples(task, toy_data[task]["train"])
    source = source_model_for(STRATEGIES.get(strategy), tiny_model, tiny_vectors)
    observed = check_strategy(STRATEGIES.get(strategy), TASKS.get(task)(labels=labels), source, examples)
    assert observed


@pytest.fixture(scope="module")
def teacher_runs(tiny_model: str, toy_data, tmp_path_factory):
    """A finished ``finetune`` run per task, trained on first use: the teacher of strategies that distil."""
    runs: dict[str, str] = {}

    def teacher_for(task: str) -> str:
        if task not in runs:
            output = str(tmp_path_factory.mktemp(f"teacher_{task}") / "run")
            train(RunConfig.from_dict({
                "model": tiny_model, "strategy": "finetune", "task": task, "output": output,
                "data": {"train": toy_data[task]["train"], "eval": toy_data[task]["eval"], "text_column": "sentence",
                         "max_length": 64},
                "training": {"epochs": 10, "batch_size": 16, "learning_rate": 3e-3, "progress": False,
                             "checkpoint_every": 0}}))
            runs[task] = output
        return runs[task]

    return teacher_for


def learns_from_a_teacher(strategy_cls: type, task: str) -> bool:
    """Whether the strategy's own check asks for a teacher (a run without one is refused, naming it)."""
    sources = {name: "unused.csv" for name in strategy_cls.requires}
    config = RunConfig.from_dict({"strategy": strategy_cls.name, "data": {"sources": sources}})
    try:
        strategy_cls(strategy_cls.Config()).check(TASKS.get(task), config)
    except UserError as exc:
        return "learns from a teacher" in str(exc)
    return False


def needs_the_task_setting(strategy_cls: type, task: str) -> bool:
    """Whether the strategy's own check refuses a stream outside ``continual.setting: task`` (per-stage adapters)."""
    stages = [{"path": "a.csv", "test": "a.csv"}, {"path": "b.csv", "test": "b.csv"}]
    config = RunConfig.from_dict({"strategy": strategy_cls.name, "data": {"stream": stages}})
    try:
        strategy_cls(strategy_cls.Config()).check(TASKS.get(task), config)
    except UserError as exc:
        return "continual.setting: task" in str(exc)
    return False


@pytest.mark.parametrize(("strategy", "task"), PAIRS)
def test_run_learns_saves_and_reloads(strategy: str, task: str, tiny_model: str, tiny_vectors: str,
                                      toy_data, teacher_runs, tmp_path) -> None:
    toy_files = toy_data[task]
    output = str(tmp_path / "run")
    strategy_cls = STRATEGIES.get(strategy)
    teacher = teacher_runs(task) if learns_from_a_teacher(strategy_cls, task) else None
    source = source_model_for(STRATEGIES.get(strategy), tiny_model, tiny_vectors)
    task_spec = {"name": task, "max_target_length": 16, "num_beams": 1} if task == "summarization" else task
    data = {"train": toy_files["train"], "eval": toy_files["eval"]}
    # 10 passes let a tiny model learn the toy; a strategy whose epoch is many passes (contrastive: 2·R·n pairs)
    # declares its own epochs in training_defaults and trains with those
    epochs, learning_rate, continual = strategy_cls.training_defaults.get("epochs", 10), 3e-3, {}
    if strategy_cls.learns_streams:  # two stages with the same labels, 5 passes each; stage a is tested on eval
        data, epochs = {"stream": [{"name": "a", "path": toy_files["train"], "test": toy_files["eval"]},
                                   {"name": "b", "path": toy_files["eval"], "test": toy_files["train"]}]}, 5
    stage = "a" if needs_the_task_setting(strategy_cls, task) else None  # predicted with the stage named
    if stage:  # per-stage LoRA adapters on the frozen random tiny encoder learn in 5 passes at a larger step
        continual, learning_rate = {"setting": "task"}, 3e-2
    config = RunConfig.from_dict({
        "model": source, "strategy": strategy, "task": task_spec, "output": output, "teacher": teacher,
        "data": {**data, "text_column": "sentence", "max_length": 64,
                 "sources": {name: toy_files["eval"] for name in STRATEGIES.get(strategy).requires}},  # e.g. target text
        "training": {"epochs": epochs, "batch_size": 16, "learning_rate": learning_rate, "progress": False,
                     "checkpoint_every": 0}, "continual": continual})
    result = train(config)
    for name in ("config.yaml", "metrics.json", "card.md", "train.log", "history.json", "model/labels.json"):
        assert os.path.exists(os.path.join(output, name)), name
    assert not os.path.exists(output + ".partial")
    assert 0 < result.metrics["trainable_parameters"] <= result.metrics["total_parameters"]
    reloaded = evaluate_run(output, toy_files["eval"], task_name=stage)
    if task == "summarization":  # lead-1 (the whole short document) scores ROUGE-L ~47 on this data
        metrics = result.metrics["eval"]
        assert metrics["rougeL"] >= 50 and metrics["rougeL"] > metrics["lead1"]["rougeL"], metrics
        assert reloaded["rougeL"] == pytest.approx(result.metrics["eval"]["rougeL"])
        return
    if task == "question_answering":  # always answering the first context word scores ~F1 5 on this data
        assert result.metrics["eval"]["f1"] >= 40, result.metrics["eval"]["f1"]
        assert reloaded["f1"] == pytest.approx(result.metrics["eval"]["f1"])
        return
    if task == "token_classification":  # all-O scores entity F1 0; a tiny random encoder must clearly beat it
        assert result.metrics["eval"]["f1"] >= 0.2, result.metrics["eval"]["f1"]
        assert reloaded["f1"] == pytest.approx(result.metrics["eval"]["f1"])
        assert reloaded["per_type"] == result.metrics["eval"]["per_type"]
        return
    measured = result.metrics["test"]["a"] if strategy_cls.learns_streams else result.metrics["eval"]
    assert result.metrics["eval"]["accuracy"] >= 0.8, result.metrics["eval"]["accuracy"]
    assert reloaded["confusion_matrix"] == measured["confusion_matrix"]
    assert reloaded["accuracy"] == pytest.approx(measured["accuracy"])
    assert reloaded["roc_auc"] == pytest.approx(measured["roc_auc"], abs=1e-6)
