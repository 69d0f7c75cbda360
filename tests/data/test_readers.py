"""read_table: every format, and a one-line UserError for every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from transferkit.core.errors import UserError
from transferkit.data import detect_format, read_table

SST2_TRAIN = SHARED_DATA / "sst2" / "train.tsv"


def write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def user_error(call, *fragments: str) -> str:
    """Run ``call``; assert a one-line UserError mentioning every fragment."""
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_csv_quotes_multiline_and_line_numbers(tmp_path):
    path = write(tmp_path / "train.csv", 'text,label\n"hello, world",pos\n\n"two\nlines",neg\nplain,pos\n')
    table = read_table(path)
    assert table.columns == ["text", "label"]
    assert table.data["text"] == ["hello, world", "two\nlines", "plain"]
    assert table.data["label"] == ["pos", "neg", "pos"]
    assert table.rows == [2, 4, 6]
    assert table.source == path and len(table) == 3
    assert table.where(1) == f"{path} line 4"


def test_tsv_keeps_quotes_and_bom(tmp_path):
    path = write(tmp_path / "train.tsv", '\ufeffsentence\tlabel\nit \'s "great" \t1\r\nbad "movie\t0\n')
    table = read_table(path)
    assert table.columns == ["sentence", "label"]
    assert table.data["sentence"] == ['it \'s "great" ', 'bad "movie']
    assert table.data["label"] == ["1", "0"]
    assert table.rows == [2, 3]


@pytest.mark.parametrize(("name", "expected"), [
    ("a.csv", "csv"), ("a.TSV", "tsv"), ("a.tab", "tsv"), ("a.txt", "tsv"),
    ("a.jsonl", "jsonl"), ("a.json", "jsonl"), ("hf:glue:sst2", "hf"),
])
def test_detect_format(name, expected):
    assert detect_format(name) == expected


def test_detect_format_directory_and_unknown_extension(tmp_path):
    assert detect_format(str(tmp_path)) == "hf"
    path = write(tmp_path / "data.parquet", "x")
    user_error(lambda: read_table(path), path, "data.format")


def test_explicit_format_overrides_extension(tmp_path):
    path = write(tmp_path / "data.dat", "a\tb\nx\t1\n")
    assert read_table(path, format="tsv").data == {"a": ["x"], "b": ["1"]}


def test_jsonl_blank_lines_and_missing_keys(tmp_path):
    path = write(tmp_path / "train.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "extra": true}\n  \n')
    table = read_table(path)
    assert table.columns == ["text", "label", "extra"]
    assert table.data == {"text": ["a", "b"], "label": [1, None], "extra": [None, True]}
    assert table.rows == [1, 3]


def test_hf_dataset_dir_and_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    single = tmp_path / "single"
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}).save_to_disk(str(single))
    table = read_table(str(single))
    assert table.data == {"text": ["a", "b"], "label": [0, 1]}
    assert table.rows == [1, 2] and table.unit == "row"
    assert table.where(1) == f"{single} row 2"

    both = tmp_path / "both"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["t1", "t2", "t3"], "label": [0, 1, 0]}),
        "validation": datasets.Dataset.from_dict({"text": ["v1"], "label": [1]}),
    }).save_to_disk(str(both))
    assert read_table(str(both)).data["text"] == ["t1", "t2", "t3"]
    assert read_table(f"{both}@validation", format="hf").data["text"] == ["v1"]
    assert read_table(f"{both}@validation").data["text"] == ["v1"]
    user_error(lambda: read_table(f"{both}@test"), str(both), "'test'", "'validation'")
    user_error(lambda: read_table(f"{single}@train"), str(single), "@train")


def test_hf_not_a_dataset_dir(tmp_path):
    pytest.importorskip("datasets")
    user_error(lambda: read_table(str(tmp_path)), str(tmp_path), "save_to_disk")


def test_hf_hub_unreachable(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def offline(name, config=None, split=None, **kwargs):
        calls.append((name, config, split))
        raise ConnectionError("Couldn't reach 'glue' on the Hub (LocalEntryNotFoundError)\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    user_error(lambda: read_table("hf:glue:sst2@validation"), "hf:glue:sst2@validation", "hub", "unreachable")
    assert calls == [("glue", "sst2", "validation")]
    user_error(lambda: read_table("hf:imdb"), "hf:imdb")
    assert calls[-1] == ("imdb", None, "train")  # the train split by default


def test_hf_hub_spec_needs_a_name():
    user_error(lambda: read_table("hf:"), "hf:", "NAME")


def test_missing_file(tmp_path):
    for name in ("nope.csv", "nope.jsonl", "nope.tsv"):
        path = str(tmp_path / name)
        user_error(lambda path=path: read_table(path), f"file not found: {path}")
    user_error(lambda: read_table(str(tmp_path / "nope")), "file not found")
    user_error(lambda: read_table(str(tmp_path / "nope.bin")), "file not found")


def test_directory_given_as_csv(tmp_path):
    user_error(lambda: read_table(str(tmp_path), format="csv"), str(tmp_path), "directory")


def test_unknown_format(tmp_path):
    path = write(tmp_path / "a.csv", "a\n1\n")
    user_error(lambda: read_table(path, format="xlsx"), path, "unknown format 'xlsx'", "csv")


@pytest.mark.parametrize("name", ["empty.csv", "empty.tsv", "empty.jsonl"])
def test_empty_file(tmp_path, name):
    path = write(tmp_path / name, "\n  \n")
    user_error(lambda: read_table(path), path, "empty")


def test_header_only(tmp_path):
    path = write(tmp_path / "h.tsv", "sentence\tlabel\n")
    user_error(lambda: read_table(path), path, "no records")


def test_duplicate_header(tmp_path):
    path = write(tmp_path / "d.csv", "text,text\na,b\n")
    user_error(lambda: read_table(path), path, "line 1", "duplicate column name 'text'")


def test_ragged_tsv_row(tmp_path):
    lines = ["sentence\tlabel"] + [f"s{i}\t1" for i in range(5)] + ["too\tmany\t1", "ok\t0", "x\ty\tz\tw"]
    path = write(tmp_path / "train.tsv", "\n".join(lines) + "\n")
    message = user_error(lambda: read_table(path), f"{path} line 7: expected 2 fields (sentence, label), found 3")
    assert "1 more" in message and "tab" in message


def test_ragged_csv_row_and_unclosed_quote(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nhello, world,pos\n")
    user_error(lambda: read_table(path), f"{path} line 2: expected 2 fields (text, label), found 3", "quote")
    path = write(tmp_path / "b.csv", 'text,label\nfine,pos\n"oops,neg\nnext,pos\n')
    user_error(lambda: read_table(path), f"{path} line 3:", "found 1", "unclosed quote")


def test_invalid_jsonl_line(tmp_path):
    path = write(tmp_path / "t.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": }\n')
    user_error(lambda: read_table(path), f"{path} line 2: invalid JSON", "column")


def test_jsonl_line_not_an_object(tmp_path):
    path = write(tmp_path / "t.jsonl", '{"text": "a", "label": 0}\n\n["b", 1]\n')
    user_error(lambda: read_table(path), f"{path} line 3", "JSON object", "list")


@pytest.mark.parametrize("name", ["bad.csv", "bad.tsv", "bad.jsonl"])
def test_non_utf8_bytes(tmp_path, name):
    raw = "text,label\ncaf\u00e9,1\n".encode() + b"na\xefve,0\n"
    if name.endswith(".jsonl"):
        raw = b'{"text": "ok"}\n{"text": "caf\xe9"}\n'
    path = write(tmp_path / name, raw)
    line = "line 2" if name.endswith(".jsonl") else "line 3"
    user_error(lambda: read_table(path), f"{path} {line}", "byte offset", "UTF-8")


@pytest.mark.shared_data
@pytest.mark.skipif(not SST2_TRAIN.exists(), reason=f"{SST2_TRAIN} not present")
def test_real_sst2_train():
    table = read_table(str(SST2_TRAIN))
    assert table.columns == ["sentence", "label"]
    assert len(table) == 67_349
    assert set(table.data["label"]) == {"0", "1"}
    assert table.rows[0] == 2 and table.rows[-1] == 67_350
