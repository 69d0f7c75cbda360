"""read_tagged and the BIO scheme helpers: readers, conversions, repair, offsets, real data."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.helpers import one_line_error
from transferkit.data.tagging import (
    TaggedSentences,
    char_spans,
    detect_scheme,
    entities,
    entities_with_offsets,
    from_bioes,
    read_tagged,
    repair_iob2,
    to_bioes,
    to_iob2,
)

CONLL_IOB1 = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Smith NNP I-NP B-PER


-DOCSTART- -X- O O
BRUSSELS NNP I-NP I-LOC
-DOCSTART- -X- O O"""


def write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def warnings_of(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


# --- CoNLL -------------------------------------------------------------------------------------------------


def test_conll_docstart_blank_lines_and_iob1_conversion(tmp_path, caplog):
    path = write(tmp_path / "eng.train", CONLL_IOB1)
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        data = read_tagged(path)
    assert data.tokens == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn", "Smith"], ["BRUSSELS"]]
    # IOB1 -> IOB2: an I-X that starts an entity becomes B-X; B-PER splits two adjacent PER entities
    assert data.tags == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER", "B-PER"], ["B-LOC"]]
    assert data.rows == [3, 8, 14] and data.source == path and len(data) == 3
    assert data.repaired == 0 and warnings_of(caplog) == []  # conversion is not a repair
    assert data.tag_set() == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]
    assert data.where(1) == f"{path} line 8"


def test_conll_chooses_columns(tmp_path):
    path = write(tmp_path / "chunks.txt", CONLL_IOB1)
    data = read_tagged(path, token_column=1, tag_column=2, scheme="iob1")
    assert data.tokens[0] == ["NNP", "VBZ", "JJ", "NN"]
    assert data.tags[0] == ["B-NP", "B-VP", "B-NP", "I-NP"]
    tokens_only = read_tagged(path, tag_column=None)
    assert tokens_only.tags is None and tokens_only.tokens[2] == ["BRUSSELS"]
    one_line_error(lambda: read_tagged(path, tag_column=4), f"{path} line 3", "tag_column 4 does not exist", "4 columns")
    one_line_error(lambda: read_tagged(path, token_column=-1), "both column 3")


def test_conll_column_count_mismatch_names_the_line(tmp_path):
    path = write(tmp_path / "bad.conll", "EU NNP I-NP B-ORG\nrejects VBZ O\n\nOK NN I-NP O\n")
    one_line_error(lambda: read_tagged(path), f"{path} line 2", "expected 4 whitespace-separated columns like line 1",
                   "found 3")


def test_conll_invalid_tag_names_the_line(tmp_path):
    path = write(tmp_path / "pos.conll", "EU NNP\nrejects VBZ\n")
    one_line_error(lambda: read_tagged(path), f"{path} line 1", "'NNP'", "choose the tag column")


def test_single_column_file_has_no_tags(tmp_path):
    data = read_tagged(write(tmp_path / "tokens.txt", "EU\nrejects\n\nPeter\n"))
    assert data.tokens == [["EU", "rejects"], ["Peter"]] and data.tags is None and data.tag_set() == ["O"]


def test_chinese_bio_is_tab_separated_conll_keeping_space_characters(tmp_path):
    text = "我\tO\n爱\tO\n北\tB-LOC\n京\tI-LOC\n\u3000\tO\n\r\n小\tB-PER.NAM\n明\tI-PER.NAM\n"
    path = write(tmp_path / "weibo.train", text)
    data = read_tagged(path, format="chinese_bio")
    assert data.tokens == [["我", "爱", "北", "京", "\u3000"], ["小", "明"]]
    assert data.tags == [["O", "O", "B-LOC", "I-LOC", "O"], ["B-PER.NAM", "I-PER.NAM"]]
    assert data.rows == [1, 7]
    assert read_tagged(path).tokens == data.tokens  # auto -> conll, same layout
    one_line_error(lambda: read_tagged(write(tmp_path / "bad", "我\tO\n爱 O\n")), "bad line 2", "tab-separated")


# --- MSRA and JSON Lines -----------------------------------------------------------------------------------


def test_msra_tsv(tmp_path):
    rows = ["\x02".join("我在北京"), "\x02".join(["O", "O", "B-LOC", "I-LOC"])]
    path = write(tmp_path / "dev.tsv", f"text_a\tlabel\n{rows[0]}\t{rows[1]}\n\n张\x02三\tB-PER\x02I-PER\r\n")
    data = read_tagged(path)
    assert data.tokens == [["我", "在", "北", "京"], ["张", "三"]]
    assert data.tags == [["O", "O", "B-LOC", "I-LOC"], ["B-PER", "I-PER"]]
    assert data.rows == [2, 4]
    bad = write(tmp_path / "bad.tsv", "text_a\tlabel\n张\x02三\tB-PER\n")
    one_line_error(lambda: read_tagged(bad), f"{bad} line 2", "2 characters but 1 tags")
    one_line_error(lambda: read_tagged(write(tmp_path / "b2.tsv", "text_a\tlabel\n张\n")), "line 2", "found 1")
    one_line_error(lambda: read_tagged(write(tmp_path / "b3.tsv", "a\tb\n"), format="msra"), "line 1", "text_a")


def test_jsonl(tmp_path):
    lines = [{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}, {"tokens": ["Peter"], "tags": ["I-PER"]}]
    path = write(tmp_path / "train.jsonl", "\n".join(map(json.dumps, lines)) + "\n\n")
    data = read_tagged(path)
    assert data.tokens == [["EU", "rejects"], ["Peter"]]
    assert data.tags == [["B-ORG", "O"], ["B-PER"]] and data.rows == [1, 2]
    unlabelled = read_tagged(write(tmp_path / "x.jsonl", json.dumps({"tokens": ["a"]})))
    assert unlabelled.tags is None


@pytest.mark.parametrize(("lines", "fragments"), [
    (['{"tokens": ["a", "b"], "tags": ["O"]}'], ["line 1", "2 tokens but tags is ['O']"]),
    (['{"tokens": ["a"], "tags": ["O"]}', '{"tokens": ["b"]}'], ["line 2", "every line or on none"]),
    (['{"tokens": []}'], ["line 1", "non-empty list of strings"]),
    (['{"tokens": ["a"]', ""], ["line 1", "invalid JSON"]),
])
def test_jsonl_errors_name_the_line(tmp_path, lines, fragments):
    path = write(tmp_path / "bad.jsonl", "\n".join(lines))
    one_line_error(lambda: read_tagged(path), path, *fragments)


# --- bad files ---------------------------------------------------------------------------------------------


def test_bad_files_give_one_line_errors(tmp_path):
    one_line_error(lambda: read_tagged(str(tmp_path / "missing.conll")), "file not found", "missing.conll")
    one_line_error(lambda: read_tagged(str(tmp_path)), "is a directory")
    one_line_error(lambda: read_tagged(write(tmp_path / "empty.conll", "\n \n")), "empty.conll: file is empty")
    one_line_error(lambda: read_tagged(write(tmp_path / "e.jsonl", "")), "e.jsonl: file is empty", '"tokens"')
    one_line_error(lambda: read_tagged(write(tmp_path / "d.conll", "-DOCSTART- -X- O O\n")), "no sentences")
    one_line_error(lambda: read_tagged(write(tmp_path / "latin1.conll", b"caf\xe9 O\n")), "latin1.conll line 1",
                   "not valid UTF-8")
    path = write(tmp_path / "ok.conll", "a O\n")
    one_line_error(lambda: read_tagged(path, format="conl"), "unknown tagged data format 'conl'", "conll")
    one_line_error(lambda: read_tagged(path, scheme="iob3"), "unknown tag scheme 'iob3'")
    one_line_error(lambda: read_tagged(write(tmp_path / "s.conll", "a S-PER\n"), scheme="iob2"), "set the scheme")


# --- schemes and repair ------------------------------------------------------------------------------------


def test_to_iob2_and_detect_scheme():
    assert to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-LOC"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG", "B-LOC"]
    assert to_iob2(["B-PER", "I-PER", "B-PER"]) == ["B-PER", "I-PER", "B-PER"]  # IOB2 is unchanged
    assert detect_scheme([["I-ORG", "O", "I-PER", "B-PER"]]) == "iob1"
    assert detect_scheme([["B-ORG", "I-ORG", "O", "I-PER", "B-PER"]]) == "iob2"  # one bad I- among B- starts
    assert detect_scheme([["S-ORG", "O"], ["B-PER", "E-PER"]]) == "bioes"
    assert detect_scheme([["O", "O"]]) == "iob2"


def random_iob2(rng: random.Random, length: int) -> list[str]:
    return to_iob2([rng.choice(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]) for _ in range(length)])


def test_bioes_round_trip():
    assert to_bioes(["B-PER", "I-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]) == [
        "B-PER", "I-PER", "E-PER", "O", "S-LOC", "B-LOC", "E-LOC"]
    rng = random.Random(0)
    for length in range(0, 30):
        tags = random_iob2(rng, length)
        bioes = to_bioes(tags)
        assert from_bioes(bioes) == tags
        assert sum(tag[0] in "BS" for tag in bioes) == sum(tag[0] in "ES" for tag in bioes) == len(entities(tags))


def test_repair_iob2_counts_changes():
    assert repair_iob2(["O", "I-PER", "I-PER", "B-LOC", "I-ORG"]) == (["O", "B-PER", "I-PER", "B-LOC", "B-ORG"], 2)
    assert repair_iob2(["B-PER", "I-PER"]) == (["B-PER", "I-PER"], 0)


def test_reading_repairs_invalid_iob2_with_one_warning(tmp_path, caplog):
    text = "EU B-ORG\nsays O\nPeter I-PER\n\nBonn B-LOC\nand O\nParis I-LOC\nFrance I-LOC\n\nUN B-ORG\n"
    path = write(tmp_path / "train.conll", text)
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        data = read_tagged(path)
    assert data.tags == [["B-ORG", "O", "B-PER"], ["B-LOC", "O", "B-LOC", "I-LOC"], ["B-ORG"]]
    assert data.repaired == 2
    assert warnings_of(caplog) == [
        f"{path}: repaired 2 invalid BIO tags (first at line 3): an I-X that does not continue an X entity "
        "now starts one (B-X)"]


def test_bioes_file_is_converted_and_repaired(tmp_path, caplog):
    lines = [{"tokens": list("abcd"), "tags": ["S-PER", "B-LOC", "E-LOC", "O"]},
             {"tokens": list("ef"), "tags": ["O", "E-ORG"]}]
    path = write(tmp_path / "bioes.jsonl", "\n".join(map(json.dumps, lines)))
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        data = read_tagged(path)
    assert data.tags == [["B-PER", "B-LOC", "I-LOC", "O"], ["O", "B-ORG"]]
    assert data.repaired == 1 and "(first at line 2)" in warnings_of(caplog)[0]


# --- entities and character offsets ------------------------------------------------------------------------


def test_entities_are_strict_iob2():
    assert entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "B-LOC", "I-ORG"]) == [
        ("PER", 0, 2), ("LOC", 4, 5), ("LOC", 5, 6)]
    assert entities([]) == [] and entities(["O"]) == []


def test_offsets_english_and_chinese():
    tokens = ["EU", "rejects", "German", "call"]
    assert char_spans(tokens) == [(0, 2), (3, 10), (11, 17), (18, 22)]
    found = entities_with_offsets(tokens, ["B-ORG", "O", "B-MISC", "I-MISC"])
    assert found == [
        {"type": "ORG", "text": "EU", "start": 0, "end": 2, "token_start": 0, "token_end": 1},
        {"type": "MISC", "text": "German call", "start": 11, "end": 22, "token_start": 2, "token_end": 4},
    ]
    text = "EU  rejects German call."  # the original text: spans are searched in it
    found = entities_with_offsets(tokens, ["B-ORG", "O", "B-MISC", "I-MISC"], text=text)
    assert [(e["text"], e["start"], e["end"]) for e in found] == [("EU", 0, 2), ("German call", 12, 23)]
    chars = list("我爱北京天安门")
    assert char_spans(chars, joiner="") == [(i, i + 1) for i in range(7)]
    found = entities_with_offsets(chars, ["O", "O", "B-LOC", "I-LOC", "B-LOC", "I-LOC", "I-LOC"], joiner="")
    assert [(e["text"], e["start"], e["end"]) for e in found] == [("北京", 2, 4), ("天安门", 4, 7)]
    one_line_error(lambda: char_spans(["a", "zz"], text="a b"), "token 1 'zz' not found")
    one_line_error(lambda: entities_with_offsets(["a"], ["O", "O"]), "1 tokens but 2 tags")


def test_subset_keeps_alignment():
    data = TaggedSentences([["a"], ["b", "c"], ["d"]], [["O"], ["B-X", "I-X"], ["O"]], [1, 3, 6], "f", repaired=1)
    part = data.subset([2, 1])
    assert part.tokens == [["d"], ["b", "c"]] and part.tags == [["O"], ["B-X", "I-X"]] and part.rows == [6, 3]
    assert part.source == "f" and part.repaired == 1
    assert TaggedSentences([["a"]]).subset([0]).tags is None


# --- the shared datasets -----------------------------------------------------------------------------------

CONLL_TAGS = ["O"] + [f"{prefix}-{kind}" for prefix in "BI" for kind in ("LOC", "MISC", "ORG", "PER")]


@pytest.mark.shared_data
@pytest.mark.parametrize(("name", "sentences", "tokens"), [("eng.train", 14041, 203621), ("eng.testa", 3250, 51362)])
def test_conll2003(name, sentences, tokens):
    data = read_tagged(str(SHARED_DATA / "conll2003_en" / name))
    assert len(data) == sentences and sum(map(len, data.tokens)) == tokens
    assert data.tag_set() == CONLL_TAGS and data.repaired == 0
    if name == "eng.train":
        assert data.tokens[0] == ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
        assert data.tags[0] == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]


@pytest.mark.shared_data
@pytest.mark.parametrize(("split", "sentences", "characters"), [("train", 1350, 73778), ("dev", 270, 14509)])
def test_weibo_ner(split, sentences, characters):
    data = read_tagged(str(SHARED_DATA / "weibo_ner" / f"weiboNER_2nd_conll.{split}"), format="chinese_bio")
    assert len(data) == sentences and sum(map(len, data.tokens)) == characters
    kinds = [f"{kind}.{sub}" for kind in ("GPE", "LOC", "ORG", "PER") for sub in ("NAM", "NOM")]
    assert data.tag_set() == ["O"] + [f"{prefix}-{kind}" for prefix in "BI" for kind in kinds]
    # train has 10 genuinely invalid tags, e.g. "I-PER.NAM I-PER.NOM" (type changes inside an entity)
    assert data.repaired == (10 if split == "train" else 0)


@pytest.mark.shared_data
def test_msra_dev():
    data = read_tagged(str(SHARED_DATA / "msra_ner_ernie" / "dev.tsv"))
    assert len(data) == 2318 and data.rows[0] == 2
    assert data.tag_set() == ["O", "B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER"]
    assert all(len(tokens) == len(tags) for tokens, tags in zip(data.tokens, data.tags, strict=True))
