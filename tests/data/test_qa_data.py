"""read_squad / split_by_title: both formats, every bad-input case, and the real SQuAD dev articles."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import one_line_error
from transferkit.data.qa import QAExamples, align_answer, read_squad, split_by_title

CONTEXT = "The cat sat on the mat. Paris is the capital of France."


def squad_json(tmp_path: Path, articles: list[dict], name: str = "dev.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"data": articles, "version": "1.1"}), encoding="utf-8")
    return str(path)


def article(title: str, qas: list[dict], context: str = CONTEXT) -> dict:
    return {"title": title, "paragraphs": [{"context": context, "qas": qas}]}


def qa(qid: str, question: str, *answers: tuple[str, int]) -> dict:
    return {"id": qid, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers]}


def jsonl(tmp_path: Path, records: list[dict | str], name: str = "dev.jsonl") -> str:
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_official_json_keeps_every_reference(tmp_path):
    path = squad_json(tmp_path, [
        article("Cats", [qa("q1", "Where did the cat sit?", ("on the mat", 12), ("the mat", 15))]),
        article("Paris", [qa("q2", "Capital of France?", ("Paris", 24))]),
    ])
    examples = read_squad(path)
    assert examples.ids == ["q1", "q2"] and len(examples) == 2
    assert examples.titles == ["Cats", "Paris"]
    assert examples.answers[0] == [{"text": "on the mat", "answer_start": 12}, {"text": "the mat", "answer_start": 15}]
    assert examples.contexts[1] == CONTEXT and examples.questions[1] == "Capital of France?"
    assert (examples.skipped, examples.realigned, examples.dropped_answers, examples.source) == (0, 0, 0, path)


@pytest.mark.parametrize("style", ["hf", "list"])
def test_jsonl_both_answer_styles(tmp_path, style):
    answers = {"text": ["Paris"], "answer_start": [24]} if style == "hf" else [{"text": "Paris", "answer_start": 24}]
    record = {"id": 7, "question": "Capital?", "context": CONTEXT, "answers": answers}
    for path in (jsonl(tmp_path, [record, {**record, "id": "b", "title": "T"}]), jsonl(tmp_path, [record], "one.json")):
        examples = read_squad(path)
        assert examples.ids[0] == "7" and examples.answers[0] == [{"text": "Paris", "answer_start": 24}]
    assert examples.titles == [""]


def test_chinese_offsets_are_characters(tmp_path):
    context = "北京是中国的首都。"
    path = jsonl(tmp_path, [{"id": "z", "question": "首都？", "context": context,
                             "answers": {"text": ["北京"], "answer_start": [0]}}])
    assert read_squad(path).answers == [[{"text": "北京", "answer_start": 0}]]


def test_misaligned_answer_is_realigned_or_skipped_with_its_id(tmp_path, caplog):
    path = squad_json(tmp_path, [article("A", [
        qa("near", "Capital?", ("Paris", 30)),             # off by 6: realigned
        qa("far", "Where?", ("France", 5)),                 # 44 away: dropped -> skipped
        qa("mixed", "Sit?", ("Paris", 0), ("the mat", 15)),  # one bad reference dropped, question kept
    ])])
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        examples = read_squad(path)
    assert examples.ids == ["near", "mixed"]
    assert examples.answers[0] == [{"text": "Paris", "answer_start": 24}]
    assert examples.answers[1] == [{"text": "the mat", "answer_start": 15}]
    assert (examples.skipped, examples.skipped_ids, examples.realigned, examples.dropped_answers) == (1, ["far"], 1, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 1 of 3" in warnings[0] and "'far'" in warnings[0] and "no answer matches" in warnings[0]


def test_realign_picks_the_nearest_occurrence():
    context = "a cat, a cat, a cat"
    assert align_answer(context, "cat", 8) == 9
    assert align_answer(context, "cat", 2) == 2
    assert align_answer(context, "dog", 2) is None
    assert align_answer(context, "   ", 0) is None


def test_empty_context_and_question_are_skipped_and_named(tmp_path, caplog):
    good = {"id": "ok", "question": "Capital?", "context": CONTEXT, "answers": [{"text": "Paris", "answer_start": 24}]}
    path = jsonl(tmp_path, [good, {**good, "id": "noctx", "context": "  "}, {**good, "id": "noq", "question": ""}])
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        examples = read_squad(path)
    assert examples.ids == ["ok"] and examples.skipped_ids == ["noctx", "noq"]
    assert "1 empty context" in caplog.text and "1 empty question" in caplog.text and "'noctx'" in caplog.text


def test_unanswered_questions_only_for_prediction(tmp_path):
    path = jsonl(tmp_path, [{"id": "a", "question": "Capital?", "context": CONTEXT},
                            {"id": "b", "question": "Who?", "context": CONTEXT, "answers": []}])
    one_line_error(lambda: read_squad(path), path, "line 1", "'a' has no answers", "(1 more", "require_answers=False")
    examples = read_squad(path, require_answers=False)
    assert examples.ids == ["a", "b"] and examples.answers == [[], []]
    no_answers = jsonl(tmp_path, [{"id": "a", "question": "Capital?", "context": CONTEXT}], "predict.jsonl")
    assert read_squad(no_answers, require_answers=False).answers is None


def test_prediction_mode_keeps_questions_whose_answers_fail(tmp_path):
    path = squad_json(tmp_path, [article("A", [qa("far", "Where?", ("France", 5))])])
    examples = read_squad(path, require_answers=False)
    assert examples.ids == ["far"] and examples.answers == [[]] and examples.dropped_answers == 1


def test_malformed_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text('{"data": [\n  {"title": "A",\n   "paragraphs": [}\n]}', encoding="utf-8")
    one_line_error(lambda: read_squad(str(path)), str(path), "line 3", "invalid JSON")


def test_missing_keys_name_the_position(tmp_path):
    path = squad_json(tmp_path, [article("A", [{"id": "q", "answers": []}])])
    one_line_error(lambda: read_squad(path), path, "data[0].paragraphs[0].qas[0]", "missing key 'question'", "SQuAD v1.1")
    path = squad_json(tmp_path, [{"title": "A", "paragraphs": [{"qas": []}]}], "noctx.json")
    one_line_error(lambda: read_squad(path), path, "data[0].paragraphs[0]", "'context'")
    bad = tmp_path / "nodata.json"
    bad.write_text('{"version": "1.1"}', encoding="utf-8")
    one_line_error(lambda: read_squad(str(bad)), "missing key 'data'")


def test_jsonl_errors_name_the_line(tmp_path):
    good = {"id": "a", "question": "Capital?", "context": CONTEXT, "answers": [{"text": "Paris", "answer_start": 24}]}
    path = jsonl(tmp_path, [good, "", '{"id": "b", "question": '])
    one_line_error(lambda: read_squad(path), path, "line 3", "invalid JSON")
    path = jsonl(tmp_path, [good, {**good, "id": "b", "context": None}], "nocontext.jsonl")
    one_line_error(lambda: read_squad(path), path, "line 2", "'context' must be a str")
    path = jsonl(tmp_path, [good, {**good, "answers": {"text": ["Paris"], "answer_start": []}}], "pairs.jsonl")
    one_line_error(lambda: read_squad(path), "line 2", "1 texts but 0 answer_start")
    path = jsonl(tmp_path, [good, {**good, "answers": [{"text": "Paris", "answer_start": "24"}]}], "type.jsonl")
    one_line_error(lambda: read_squad(path), "line 2 answers[0]", "'answer_start' must be a int")


def test_duplicate_ids_empty_and_missing_files(tmp_path):
    good = {"id": "a", "question": "Capital?", "context": CONTEXT, "answers": [{"text": "Paris", "answer_start": 24}]}
    path = jsonl(tmp_path, [good, good])
    one_line_error(lambda: read_squad(path), "line 2", "duplicate question id 'a'", "first at line 1")
    empty = tmp_path / "empty.json"
    empty.write_text("\n", encoding="utf-8")
    one_line_error(lambda: read_squad(str(empty)), "file is empty")
    one_line_error(lambda: read_squad(str(tmp_path / "absent.json")), "file not found")
    one_line_error(lambda: read_squad(path, format="xml"), "unknown format 'xml'")


def test_all_questions_skipped_is_an_error(tmp_path):
    path = squad_json(tmp_path, [article("A", [qa("far", "Where?", ("France", 5))])])
    one_line_error(lambda: read_squad(path), path, "no usable questions")


def test_split_by_title_is_article_level(tmp_path):
    articles = [article(f"T{k}", [qa(f"q{k}{j}", "Capital?", ("Paris", 24)) for j in range(k + 1)]) for k in range(5)]
    examples = read_squad(squad_json(tmp_path, articles))
    train, evaluation = split_by_title(examples, 2)
    assert set(train.titles) == {"T0", "T1", "T2"} and set(evaluation.titles) == {"T3", "T4"}
    assert len(train) == 6 and len(evaluation) == 9 and evaluation.ids[0] == "q30"
    seeded = split_by_title(examples, 2, seed=3)
    assert seeded[1].ids == split_by_title(examples, 2, seed=3)[1].ids
    assert len(set(seeded[1].titles)) == 2 and not set(seeded[0].titles) & set(seeded[1].titles)
    one_line_error(lambda: split_by_title(examples, 5), "cannot hold out 5 of 5", "pick 1 to 4")
    untitled = examples.subset([0, 1])
    untitled.titles = ["", ""]
    one_line_error(lambda: split_by_title(untitled, 1), "1 article titles", "add a 'title'")


def test_subset_keeps_alignment():
    examples = QAExamples(ids=["a", "b"], questions=["qa", "qb"], contexts=["ca", "cb"],
                          answers=[[{"text": "x", "answer_start": 0}], []], titles=["ta", "tb"], skipped=1)
    picked = examples.subset([1])
    assert (picked.ids, picked.questions, picked.contexts, picked.answers, picked.titles) == (["b"], ["qb"], ["cb"], [[]], ["tb"])
    assert picked.skipped == 1


@pytest.mark.shared_data
def test_real_squad_dev_articles(caplog):
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        examples = read_squad(str(SHARED_DATA / "squad_v1.1" / "dev-v1.1.articles-00-23.json"))
    assert len(examples) == 5696 and len(set(examples.titles)) == 24
    assert sum(len(a) for a in examples.answers) == 18389  # every reference kept
    # the official data is clean: nothing realigned, dropped or skipped, and no warning
    assert (examples.skipped, examples.realigned, examples.dropped_answers) == (0, 0, 0)
    assert not caplog.records
    train, evaluation = split_by_title(examples, 4)
    assert (len(set(train.titles)), len(set(evaluation.titles))) == (20, 4)
    assert len(train) + len(evaluation) == 5696 and not set(train.titles) & set(evaluation.titles)
    assert evaluation.titles[-1] == "Victoria_and_Albert_Museum"
