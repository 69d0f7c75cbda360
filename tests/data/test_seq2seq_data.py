"""read_pairs / read_parallel / lead_sentences: every format, bad input, and the real XSum and LCSTS files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import one_line_error
from transferkit.data.seq2seq import Seq2SeqExamples, lead_sentences, read_pairs, read_parallel, split_sentences

LCSTS = SHARED_DATA / "lcsts"


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_read_pairs_jsonl_csv_tsv(tmp_path):
    rows = [{"document": "One. Two.", "summary": "One.", "id": 1}, {"document": "Three.\nFour.", "summary": "Three."}]
    path = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    pairs = read_pairs(path)
    assert pairs.sources == ["One. Two.", "Three.\nFour."] and pairs.targets == ["One.", "Three."]
    assert pairs.rows == [1, 2] and pairs.source == path and len(pairs) == 2
    csv_pairs = read_pairs(write(tmp_path / "a.csv", 'text,headline\n"A, b.",A\nC.,C\n'),
                           source_column="text", target_column="headline")
    assert csv_pairs.sources == ["A, b.", "C."] and csv_pairs.targets == ["A", "C"] and csv_pairs.rows == [2, 3]
    tsv_pairs = read_pairs(write(tmp_path / "a.tsv", "document\tsummary\nd1\ts1\n"))
    assert tsv_pairs.targets == ["s1"]
    assert read_pairs(path, target_column=None).targets is None


def test_read_pairs_bad_input_names_the_line(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"document": "ok", "summary": "s"}\n{"document": "d", "summary": "  "}\n'
                                       '{"document": "d"}\n')
    one_line_error(lambda: read_pairs(path), f"{path} line 2", "summary is empty", "(1 more")
    path = write(tmp_path / "b.jsonl", '{"document": "", "summary": "s"}\n')
    one_line_error(lambda: read_pairs(path), f"{path} line 1", "document is empty")
    path = write(tmp_path / "c.jsonl", '{"document": 5, "summary": "s"}\n')
    one_line_error(lambda: read_pairs(path), "line 1", "document is not text (5)")
    path = write(tmp_path / "d.jsonl", '{"text": "d", "summary": "s"}\n')
    one_line_error(lambda: read_pairs(path), "no column 'document'", "columns found: 'text', 'summary'")
    path = write(tmp_path / "e.jsonl", '{"document": "d", "summary": "s"}\n{"document": \n')
    one_line_error(lambda: read_pairs(path), "line 2", "invalid JSON")


def test_read_parallel_pairs_lines(tmp_path):
    source = write(tmp_path / "src.txt", "文一。文二。\r\n第二行\r\n")
    target = write(tmp_path / "tgt.txt", "摘要一\n摘要二")
    pairs = read_parallel(source, target)
    assert pairs.sources == ["文一。文二。", "第二行"] and pairs.targets == ["摘要一", "摘要二"]
    assert pairs.rows == [1, 2] and source in pairs.source and target in pairs.source


def test_read_parallel_bad_input(tmp_path):
    source = write(tmp_path / "src.txt", "a\nb\nc\n")
    target = write(tmp_path / "tgt.txt", "x\ny\n")
    one_line_error(lambda: read_parallel(source, target), source, target, "3 lines", "has 2")
    gap = write(tmp_path / "gap.txt", "x\n \ny\n\n")  # two empty lines after removing the final newline
    one_line_error(lambda: read_parallel(source, gap), f"{gap} line 2", "empty line", "(1 more")
    empty = write(tmp_path / "empty.txt", "")
    one_line_error(lambda: read_parallel(empty, target), empty, "file is empty")
    one_line_error(lambda: read_parallel(str(tmp_path / "absent.txt"), target), "file not found")


def test_subset():
    pairs = Seq2SeqExamples(sources=["a", "b", "c"], targets=["x", "y", "z"], rows=[2, 3, 4], source="f")
    picked = pairs.subset([2, 0])
    assert (picked.sources, picked.targets, picked.rows, picked.source) == (["c", "a"], ["z", "x"], [4, 2], "f")
    assert Seq2SeqExamples(sources=["a"]).subset([0]).targets is None


@pytest.mark.parametrize(("text", "expected"), [
    ("Mr. Smith went to Washington. He said \"hi!\" Then he left... J. K. Rowling wrote it.",
     ["Mr. Smith went to Washington.", 'He said "hi!"', "Then he left...", "J. K. Rowling wrote it."]),
    ("The U.S. team scored 3.5 points? Yes.", ["The U.S. team scored 3.5 points?", "Yes."]),
    ("Media playback is not supported on this device\nThe owners said so.", ["Media playback is not supported on this device", "The owners said so."]),
    ("no final stop", ["no final stop"]),
])
def test_english_sentences(text, expected):
    assert split_sentences(text, "en") == expected
    assert split_sentences(text) == expected  # auto -> en


def test_chinese_sentences_and_lead():
    text = "日前，方舟子发文直指。调查发现，爱碧丽没有工厂！号称有“逆生长”功效？ 实际成本仅为4元"
    assert split_sentences(text) == ["日前，方舟子发文直指。", "调查发现，爱碧丽没有工厂！", "号称有“逆生长”功效？", "实际成本仅为4元"]
    assert lead_sentences(text) == "日前，方舟子发文直指。"
    assert lead_sentences(text, n=2) == "日前，方舟子发文直指。调查发现，爱碧丽没有工厂！"
    assert split_sentences("他说：“好。”然后走了。") == ["他说：“好。”", "然后走了。"]


def test_lead_sentences_english_and_errors():
    assert lead_sentences("One two. Three four! Five?", n=2) == "One two. Three four!"
    assert lead_sentences("Only one.", n=3) == "Only one."
    assert lead_sentences("") == ""
    one_line_error(lambda: lead_sentences("x", n=0), "n >= 1")
    one_line_error(lambda: split_sentences("x", language="fr"), "unknown language 'fr'")


@pytest.mark.shared_data
def test_real_xsum_sample():
    pairs = read_pairs(str(SHARED_DATA / "xsum_sample" / "sample-000-799.jsonl"))
    assert len(pairs) == 800 and pairs.rows[-1] == 800
    leads = [lead_sentences(document) for document in pairs.sources]
    assert all(leads) and leads[0].startswith("The owners said") and leads[0].endswith("500 jobs.")
    # XSum documents are multi-sentence: the lead is much shorter than the document
    assert sum(map(len, leads)) < 0.2 * sum(map(len, pairs.sources))


@pytest.mark.shared_data
def test_real_lcsts():
    pairs = read_parallel(str(LCSTS / "src.000-8665.txt"), str(LCSTS / "tgt.000-8665.txt"))
    assert len(pairs) == 8666 and len(pairs.targets) == 8666
    assert pairs.targets[0] == "林志颖公司疑涉虚假营销无厂房无研发"
    assert lead_sentences(pairs.sources[0]) == "日前，方舟子发文直指林志颖旗下爱碧丽推销假保健品，引起哗然。"
