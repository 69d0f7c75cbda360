"""Read static word vectors: GloVe / word2vec / fastText files and the bundled ``glove-6b-50d``.

Static vectors map each word type to one dense vector learned from co-occurrence
statistics: GloVe minimises ``Σ_ij f(X_ij) (w_i·w̃_j + b_i + b̃_j - log X_ij)²`` over the
co-occurrence counts ``X`` (Pennington et al. 2014, "GloVe: Global Vectors for Word
Representation"); word2vec's skip-gram with negative sampling maximises
``log σ(v'_c·v_w) + Σ_k log σ(-v'_k·v_w)`` (Mikolov et al. 2013, "Distributed
Representations of Words and Phrases and their Compositionality"); fastText adds subword
n-grams.  All three are shipped in the same text format, which this module parses itself
so that a broken file is reported with its line number:

* GloVe: ``word v_1 ... v_d`` per line, no header;
* word2vec / fastText ``.vec``: the same after a first line ``COUNT DIM``;
* word2vec binary (``.bin``): read with gensim's ``KeyedVectors.load_word2vec_format``.

gensim's native ``.kv`` / ``.model`` files are pickles and are refused: transferkit never
unpickles.  Only the ``wanted`` words (plus, optionally, the ``first`` words of the file,
which these formats list most frequent first) are kept; their floats are the only ones parsed.

>>> vectors = read_vectors("glove-6b-50d", {"movie", "film"})  # doctest: +SKIP
>>> vectors.matrix.shape  # doctest: +SKIP
(2, 50)
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Literal

import numpy as np

from transferkit.core.errors import UserError
from transferkit.models.catalog import get_entry

VECTOR_EXTENSIONS = (".txt", ".vec", ".bin", ".gz")
PICKLE_EXTENSIONS = (".kv", ".model", ".pkl", ".pickle", ".npy", ".wv")
GLOVE_MATRIX = "glove_6B_50d_emb.npy"
GLOVE_INDEX = "glove_6B_index.parquet"
ModelKind = Literal["transformer", "vectors", "text_encoder"]


@dataclass
class StaticVectors:
    """Word vectors: ``matrix[i]`` (float32, ``(len(words), dim)``) is the vector of ``words[i]``."""

    words: list[str]
    matrix: np.ndarray
    dim: int
    source: str
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {}
        for row, word in enumerate(self.words):  # the first occurrence of a duplicate wins
            self.index.setdefault(word, row)

    def __len__(self) -> int:
        return len(self.words)


def _suffixes(path: str) -> str:
    name = os.path.basename(path).lower()
    return name[:-3] if name.endswith(".gz") else name


def model_kind(ref: str) -> ModelKind:
    """A catalog entry's kind, ``vectors`` for an existing vectors file, else ``transformer``."""
    entry = get_entry(str(ref).strip())
    if entry is not None:
        return entry.kind
    path = os.path.expanduser(str(ref))
    if os.path.isfile(path) and path.lower().endswith(VECTOR_EXTENSIONS + PICKLE_EXTENSIONS):
        return "vectors"
    return "transformer"


def read_vectors(ref: str, wanted: set[str] | None = None, first: int = 0) -> StaticVectors:
    """Read word vectors from a catalog name or a file, keeping ``wanted`` words (None = all)
    and the ``first`` words of the file, in file order.

    Raises:
        UserError: a missing file, a pickle (``.kv``/``.model``), a bad header or a line
            whose number of values differs from the dimension (the message names the line).
    """
    entry = get_entry(str(ref).strip())
    if entry is not None:
        if entry.kind != "vectors":
            raise UserError(f"'{ref}' is a {entry.kind} model, not word vectors: use glove-6b-50d or a vectors file")
        return _read_catalog(entry.name, entry.resolve(), wanted, first)
    path = check_vectors_file(str(ref))
    if _suffixes(path).endswith(".bin"):
        return _read_binary(path, wanted, first)
    return _read_text(path, wanted, first)


def check_vectors_file(ref: str) -> str:
    """The expanded path of an existing vectors file that is not a pickle; else a one-line UserError."""
    path = os.path.expanduser(ref)
    if not os.path.exists(path):
        raise UserError(f"vectors file not found: {path}")
    if not os.path.isfile(path):
        raise UserError(f"vectors reference is a directory, not a vectors file: {path}")
    _refuse_pickle(path)
    return path


def _refuse_pickle(path: str) -> None:
    with open(path, "rb") as handle:
        head = handle.read(2)
    if path.lower().endswith(PICKLE_EXTENSIONS) or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        raise UserError(
            f"{path} is a pickle (gensim .kv/.model or similar); transferkit never unpickles: "
            "export it once with KeyedVectors.save_word2vec_format(path.replace('.kv', '.vec')) and use the .vec file"
        )


def _read_catalog(name: str, root: str, wanted: set[str] | None, first: int) -> StaticVectors:
    """The bundled GloVe 6B: an npy matrix (memory-mapped; only wanted rows are copied) and a word index."""
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"catalog model '{name}' needs pyarrow to read its word index: `pip install pyarrow`") from None
    matrix_path, index_path = os.path.join(root, GLOVE_MATRIX), os.path.join(root, GLOVE_INDEX)
    for required in (matrix_path, index_path):
        if not os.path.isfile(required):
            raise UserError(f"catalog model '{name}' is incomplete: missing {required}")
    column = pq.read_table(index_path, columns=["index"]).column("index")
    matrix = np.load(matrix_path, mmap_mode="r")  # (400000, 50) float32, never loaded whole
    if wanted is None:
        rows = np.arange(len(column))
    else:
        import pyarrow as pa

        mask = pc.is_in(column, value_set=pa.array(sorted(wanted), type=column.type)).to_numpy(zero_copy_only=False)
        mask[:first] = True
        rows = np.flatnonzero(mask)
    words = column.take(rows).to_pylist()
    return StaticVectors(words, np.ascontiguousarray(matrix[rows], dtype=np.float32), int(matrix.shape[1]), name)


def _read_binary(path: str, wanted: set[str] | None, first: int) -> StaticVectors:
    from gensim.models import KeyedVectors

    try:
        vectors = KeyedVectors.load_word2vec_format(path, binary=True)
    except Exception as exc:  # gensim raises ValueError, EOFError, UnicodeDecodeError ... on a bad file
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(
            f"{path}: not a word2vec binary file ({text}); fastText .bin models are not supported: use the .vec text file"
        ) from None
    keys = vectors.index_to_key
    words = [word for row, word in enumerate(keys) if wanted is None or row < first or word in wanted]
    rows = [vectors.key_to_index[word] for word in words]
    matrix = np.asarray(vectors.vectors[rows], dtype=np.float32).reshape(len(rows), vectors.vector_size)
    return StaticVectors(words, matrix, int(vectors.vector_size), path)


def _open(path: str) -> IO[bytes]:
    return gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115


def _header(path: str, first: bytes) -> tuple[int, int] | None:
    """``(count, dim)`` of a word2vec/fastText header line, None for a GloVe file (no header)."""
    fields = first.split()
    if len(fields) != 2:
        return None
    try:
        count, dim = int(fields[0]), int(fields[1])
    except ValueError:
        count = dim = -1
    if count < 0 or dim < 1:
        shown = first.decode("utf-8", "replace").strip()
        raise UserError(f"{path} line 1: bad header '{shown}': expected 'COUNT DIM' (word2vec/fastText .vec) "
                        "or a word followed by its vector (GloVe)")
    return count, dim


def _read_text(path: str, wanted: set[str] | None, first: int) -> StaticVectors:
    """GloVe or word2vec/fastText text; every line's field count is checked, only wanted words parsed."""
    wanted_bytes = None if wanted is None else {word.encode("utf-8") for word in wanted}
    with _open(path) as handle:
        try:
            top = handle.readline()
            header = _header(path, top)
            lines = _numbered(handle, top, header is None)
            words, values, seen = _scan(path, lines, header, wanted_bytes, first)
        except (OSError, EOFError) as exc:
            raise UserError(f"{path}: cannot read the vectors file ({exc})") from None
    if header is not None and header[0] != seen:
        raise UserError(f"{path} line 1: header says {header[0]:,} words but the file has {seen:,}")
    if seen == 0:
        raise UserError(f"{path}: no vectors found (empty file?)")
    dim = header[1] if header is not None else len(top.split()) - 1
    matrix = _parse_floats(path, values, [number for _, number in words], dim)
    return StaticVectors([word.decode("utf-8", "replace") for word, _ in words], matrix, dim, path)


def _numbered(handle: IO[bytes], first: bytes, first_is_vector: bool) -> Iterator[tuple[int, bytes]]:
    if first_is_vector:
        yield 1, first
    yield from enumerate(handle, start=2)


def _scan(path: str, lines: Iterable[tuple[int, bytes]], header: tuple[int, int] | None,
          wanted: set[bytes] | None, first: int) -> tuple[list[tuple[bytes, int]], list[bytes], int]:
    """Check each line's field count; return (wanted (word, line number)s, their value strings, lines seen)."""
    dim, dim_line = (header[1], 0) if header is not None else (0, 0)
    words: list[tuple[bytes, int]] = []
    values: list[bytes] = []
    seen, taken = 0, set()
    for number, raw in lines:
        line = raw.rstrip()
        if not line:
            continue
        count = line.count(b" ")
        if not dim:
            dim, dim_line = count, number
        if count != dim:
            word, rest = _odd_line(path, line, number, dim, dim_line)
        else:
            word, _, rest = line.partition(b" ")
        if (wanted is None or seen < first or word in wanted) and word not in taken:
            taken.add(word)
            words.append((word, number))
            values.append(rest)
        seen += 1
    return words, values, seen


def _odd_line(path: str, line: bytes, number: int, dim: int, dim_line: int) -> tuple[bytes, bytes]:
    """A line with more fields than ``dim`` may be a word containing spaces (GloVe 840B); else an error."""
    fields = line.split(b" ")
    if len(fields) - 1 > dim > 0:
        word, rest = line.rsplit(b" ", dim)[0], b" ".join(fields[-dim:])
        if not any(_is_number(piece) for piece in word.split(b" ")[1:]):
            return word, rest
    where = "the header on line 1" if dim_line == 0 else f"line {dim_line}"
    if dim_line == 0 and number == 2:
        raise UserError(f"{path} line 1: header says {dim} dimensions but line 2 has {len(fields) - 1} values")
    raise UserError(f"{path} line {number}: {len(fields) - 1} values, expected {dim} (dimension set by {where})")


def _is_number(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_floats(path: str, values: list[bytes], numbers: list[int], dim: int) -> np.ndarray:
    """One vectorised conversion of all wanted lines; on failure, find the first bad line for the message."""
    if not values:
        return np.zeros((0, dim), dtype=np.float32)
    try:
        matrix = np.loadtxt(io.BytesIO(b"\n".join(values)), dtype=np.float32, comments=None, ndmin=2)
        if np.isfinite(matrix).all():
            return matrix.reshape(len(values), dim)
    except ValueError:
        pass
    for number, text in zip(numbers, values, strict=True):
        bad = [piece for piece in text.split() if not _is_number(piece) or not np.isfinite(float(piece))]
        if bad:
            shown = bad[0].decode("utf-8", "replace")[:40]
            raise UserError(f"{path} line {number}: '{shown}' is not a finite number")
    raise UserError(f"{path}: the vectors do not form a (words, {dim}) matrix")
