"""Every Chinese dataset in the shared data reads through the functions ``transferkit train`` uses
(the task's ``read_splits`` / ``read`` on a ``DataConfig``), with the counts, label and tag sets
their SOURCE.txt states; plus the reader features they need (headerless tables, empty texts,
encodings) on small files."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import one_line_error
from transferkit.core.config import DataConfig, RunConfig, build_dataclass
from transferkit.data import read_table
from transferkit.data.task_splits import read_examples
from transferkit.tasks import TASKS

XNLI_COLUMNS = {"columns": ["premise", "hypothesis", "label"], "text_column": "premise",
                "text_pair_column": "hypothesis"}
WEIBO_TYPES = [f"{kind}.{mention}" for kind in ("GPE", "LOC", "ORG", "PER") for mention in ("NAM", "NOM")]


def splits(task: str, **data):
    """The run's splits exactly as ``transferkit train`` reads them."""
    task_cls = TASKS.get(task)
    return task_cls.read_splits(build_dataclass(DataConfig, data, "data"), task_cls.Config(), 0)


def read(task: str, path, labels: list[str] | None = None, **data):
    """One file read by the task (as ``transferkit evaluate`` / a test set does)."""
    task_cls = TASKS.get(task)
    return task_cls(task_cls.Config(), labels).read(str(path), build_dataclass(DataConfig, data, "data"))


def label_counts(examples, names: list[str]) -> dict[str, int]:
    return dict(Counter(names[i] for i in examples.labels))


@pytest.mark.shared_data
def test_chnsenticorp_train_and_dev():
    root = SHARED_DATA / "chnsenticorp_ernie"
    result = splits("classification", train=str(root / "train.tsv"), eval=str(root / "dev.tsv"), text_column="text_a")
    assert (len(result.train), len(result.eval), result.labels) == (9600, 1200, ["0", "1"])
    assert result.train.rows[0] == 2 and "酒店" in result.train.texts[0] + result.eval.texts[0]


@pytest.mark.shared_data
def test_waimai_csv():
    examples = read("classification", SHARED_DATA / "waimai_10k" / "waimai_10k.csv", ["0", "1"], text_column="review")
    assert len(examples) == 11_987
    assert label_counts(examples, ["0", "1"]) == {"1": 4000, "0": 7987}


@pytest.mark.shared_data
def test_online_shopping_sentiment_and_domains(caplog):
    path = SHARED_DATA / "online_shopping_10_cats" / "online_shopping_10_cats.csv"
    one_line_error(lambda: read("classification", path, ["0", "1"], text_column="review"),
                   "line 36427", "empty text", "data.drop_empty")
    with caplog.at_level("WARNING", logger="transferkit"):
        sentiment = read("classification", path, ["0", "1"], text_column="review", drop_empty=True)
    assert "dropped 1 row(s) with empty text (first at line 36427" in caplog.text
    assert len(sentiment) == 62_773  # 62,774 rows, one with an empty review
    assert label_counts(sentiment, ["0", "1"]) == {"1": 31_727, "0": 31_046}  # the empty review was positive
    domains = splits("classification", train=str(path), text_column="review", label_column="cat", drop_empty=True)
    assert domains.labels == sorted(["书籍", "平板", "手机", "水果", "洗发水", "热水器", "蒙牛", "衣服", "计算机", "酒店"])
    assert len(domains.train) + len(domains.eval) == 62_773


@pytest.mark.shared_data
@pytest.mark.parametrize("format", ["auto", "conll", "chinese_bio"])
def test_weibo_ner(format):
    root = SHARED_DATA / "weibo_ner"
    result = splits("token_classification", train=str(root / "weiboNER_2nd_conll.train"),
                    eval=str(root / "weiboNER_2nd_conll.dev"), format=format)
    assert (len(result.train), len(result.eval)) == (1350, 270)
    assert sum(map(len, result.train.tokens)) == 73_778 and sum(map(len, result.eval.tokens)) == 14_509
    assert result.labels == ["O", *[f"{prefix}-{kind}" for kind in WEIBO_TYPES for prefix in "BI"]]
    assert set(result.train.tag_set()) | set(result.eval.tag_set()) == set(result.labels)


@pytest.mark.shared_data
@pytest.mark.parametrize("format", ["auto", "msra"])
def test_msra_ner_dev(format):
    path = SHARED_DATA / "msra_ner_ernie" / "dev.tsv"
    result = splits("token_classification", train=str(path), format=format)
    assert len(result.train) + len(result.eval) == 2318
    assert result.labels == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]  # label_map.json's tags
    assert all(len(tokens) == len(tags) for tokens, tags in zip(result.train.tokens, result.train.tags, strict=True))


@pytest.mark.shared_data
def test_lcsts_parallel_files():
    """``src.X`` pairs with ``tgt.X`` (the summarization task's parallel-file convention)."""
    root = SHARED_DATA / "lcsts"
    result = splits("summarization", train=str(root / "src.000-8665.txt"), eval_fraction=0.1)
    assert len(result.train) + len(result.eval) == 8666  # the staged slice: lines 000-8665 of PART_II
    pairs = read("summarization", root / "src.000-8665.txt")
    assert pairs.targets[0] == "林志颖公司疑涉虚假营销无厂房无研发"
    assert not any(text.endswith("\r") for text in pairs.sources + pairs.targets)


@pytest.mark.shared_data
def test_xnli_headerless_pairs_en_train_zh_test():
    root = SHARED_DATA / "xnli_en_zh"
    result = splits("classification", train=str(root / "dev-en.tsv"), test={"zh": str(root / "dev-zh.tsv")},
                    **XNLI_COLUMNS)
    assert result.labels == ["contradiction", "entailment", "neutral"]
    assert len(result.train) + len(result.eval) == 2490
    zh = result.tests["zh"]
    assert len(zh) == 2490 and zh.rows[0] == 1  # no header: line 1 is a record
    assert label_counts(zh, result.labels) == {"entailment": 830, "neutral": 830, "contradiction": 830}
    assert (zh.texts[0], zh.text_pairs[0]) == ("他说，妈妈，我回来了。", "校车把他放下后，他立即给他妈妈打了电话。")


@pytest.mark.shared_data
def test_xnli_without_columns_says_how_to_name_them():
    one_line_error(lambda: splits("classification", train=str(SHARED_DATA / "xnli_en_zh" / "dev-zh.tsv")),
                   "dev-zh.tsv", "no column 'text'", "data.columns")


# ---- the reader features, on small files ----------------------------------------------------------
def test_columns_name_a_headerless_tsv(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("他说\t你好\tneutral\n她说\t再见\tcontradiction\n", encoding="utf-8")
    examples, labels = read_examples(str(path), DataConfig(**XNLI_COLUMNS), None)
    assert examples.texts == ["他说", "她说"] and examples.text_pairs == ["你好", "再见"]
    assert labels.names == ["contradiction", "neutral"] and examples.rows == [1, 2]
    short = tmp_path / "short.tsv"
    short.write_text("他说\t你好\tneutral\n她说\t再见\n", encoding="utf-8")
    one_line_error(lambda: read_table(str(short), "tsv", XNLI_COLUMNS["columns"]),
                   "short.tsv line 2", "expected 3 fields (premise, hypothesis, label), found 2")


def test_columns_refused_on_a_file_with_that_header_or_on_jsonl(tmp_path):
    path = tmp_path / "with_header.tsv"
    path.write_text("premise\thypothesis\tlabel\na\tb\tneutral\n", encoding="utf-8")
    one_line_error(lambda: read_table(str(path), "auto", ["premise", "hypothesis", "label"]),
                   "with_header.tsv line 1", "has a header line", "unset data.columns")
    one_line_error(lambda: read_table(str(path), "auto", ["a", "a", "b"]), "names a column twice")
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"text": "a"}\n', encoding="utf-8")
    one_line_error(lambda: read_table(str(jsonl), "auto", ["text"]), "x.jsonl", "headerless csv/tsv", "jsonl")


def test_columns_is_a_config_field_with_help_and_an_override():
    config = RunConfig.from_dict({"data": {"columns": ["premise", "hypothesis", "label"]}})
    assert config.data.columns == ["premise", "hypothesis", "label"]
    from transferkit.core.config import apply_overrides, describe

    assert apply_overrides(RunConfig(), ["data.columns=[a, b]"]).data.columns == ["a", "b"]
    helps = {name: text for name, _, _, text in describe(DataConfig)}
    assert "no header line" in helps["columns"] and "empty" in helps["drop_empty"]


def test_drop_empty_keeps_line_numbers(tmp_path, caplog):
    path = tmp_path / "reviews.csv"
    path.write_text("label,review\n1,好吃\n0,\n1,  \n0,太慢了\n", encoding="utf-8-sig")  # with a BOM
    one_line_error(lambda: read_examples(str(path), DataConfig(text_column="review"), None),
                   "reviews.csv line 3", "empty text", "and 1 more rows", "data.drop_empty=true")
    with caplog.at_level("WARNING", logger="transferkit"):
        examples, _ = read_examples(str(path), DataConfig(text_column="review", drop_empty=True), None)
    assert examples.texts == ["好吃", "太慢了"] and examples.rows == [2, 5]
    assert "dropped 2 row(s) with empty text (first at line 3" in caplog.text


@pytest.mark.parametrize(("encoding", "hint"), [
    ("gbk", "decodes as GBK/GB18030"), ("utf-16", "UTF-16"),
])
def test_non_utf8_chinese_file_names_file_line_and_encoding(tmp_path, encoding, hint):
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes("label,review\n1,很快，好吃\n".encode(encoding))
    line = "line 1" if encoding == "utf-16" else "line 2"
    one_line_error(lambda: read_examples(str(path), DataConfig(text_column="review"), None),
                   f"{path} {line}", "not valid UTF-8", hint, "iconv")


def test_undecodable_bytes_still_ask_for_utf8(tmp_path):
    path = tmp_path / "binary.tsv"
    path.write_bytes(b"text\tlabel\n\xff\xff\xff\t1\n")
    one_line_error(lambda: read_table(str(path)), f"{path} line 2", "not valid UTF-8", "re-save the file as UTF-8")
