"""Export a run's model to ONNX (optionally int8) and measure its parity with the PyTorch model.

**Export.** ``torch.onnx.export(..., dynamo=True)``: ``torch.export`` traces ``TaskModel.forward`` to an
ATen graph, which onnxscript translates to ONNX opset 18, with dynamic ``batch`` and ``sequence`` axes
so one graph serves every padded batch.  (The TorchScript exporter, ``dynamo=False``, is deprecated.)

**int8** (``quantize="int8"``): onnxruntime's dynamic quantization of every MatMul/Gemm weight,
symmetric per output channel ``c``: ``W_int8 = round(W_c / s_c)``, ``s_c = max|W_c| / 127``; activations
are quantized per batch at run time (uint8, ``scale = (max - min) / 255`` with a zero point), the product
``MatMulInteger`` accumulates in int32 and is rescaled to float.  Embeddings, LayerNorm and softmax stay float,
and so, by default (``float_ffn_output``), does each layer's FFN down-projection ``W_2`` (intermediate ->
hidden, found as the MatMuls whose weight narrows the width): its input, the GELU activations, carries
the outliers that one per-tensor uint8 scale clips (Bondarenko et al. 2021, "Understanding and Overcoming
the Challenges of Efficient Transformer Quantization").  Measured on SST-2 MiniLM-L6 on 2,000 sentences
outside its test set: agreement with fp32 0.9905 -> 0.9930, max |Δprob| 0.172 -> 0.119.
(``torch.ao.quantization.quantize_dynamic`` is deprecated and not used.)

**Parity** on a seeded sample of the run's eval data: with ``p`` the PyTorch model's and ``q`` the ONNX
model's class probabilities ``softmax(logits)`` per unit (an example, or a token for token
classification), ``agreement = mean(argmax p == argmax q)`` and ``max_prob_diff = max |p - q|``.  An
export whose agreement is below ``min_agreement`` is refused before anything is written.

>>> exported, parity = export_onnx(predictor, eval_examples, "dev.tsv", OnnxExportConfig(quantize="int8"))  # doctest: +SKIP
>>> parity.summary()                                                                                   # doctest: +SKIP
'int8 ONNX vs PyTorch on 512 examples of dev.tsv: agreement 0.9980, max |Δprob| 0.0213 (min agreement 0.99)'
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from transferkit.core.config import option
from transferkit.core.errors import UserError
from transferkit.models import WordVectorModel
from transferkit.modules.task_model import BACKBONE_INPUTS
from transferkit.serving.onnx_predictor import OnnxPredictor
from transferkit.serving.predictor import NeuralPredictor

PARITY_FILE = "parity.json"
ONNX_TASKS = ("classification", "token_classification")
COVERS = ("ONNX export covers classification and token_classification runs of transformer encoders "
          "(LoRA/BitFit deltas are merged first)")


@dataclass
class OnnxExportConfig:
    """Options of ``transferkit export RUN --format onnx``."""

    quantize: Literal["none", "int8"] = option("none", "none (float32 graph) or int8 (onnxruntime dynamic int8 "
                                                       "weights of every MatMul/Gemm)")
    min_agreement: float = option(0.99, "refuse the export when the share of parity units whose predicted class "
                                        "equals the PyTorch model's is below this")
    parity_rows: int = option(512, "examples of the eval data (a seeded sample) the parity check runs on")
    seed: int = option(0, "seed of the parity sample")
    opset: int = option(18, "ONNX opset of the graph (>= 17 for LayerNormalization)")
    float_ffn_output: bool = option(True, "int8: keep each layer's FFN down-projection (intermediate -> hidden) in "
                                          "float, where BERT's outlier activations are (more accurate, a little slower)")


@dataclass
class Parity:
    """How closely the exported model follows the PyTorch model on ``examples`` examples (``units`` compared)."""

    agreement: float
    max_prob_diff: float
    examples: int
    units: int
    unit: str
    data: str
    quantize: str
    min_agreement: float

    def summary(self) -> str:
        """One line for the user."""
        per = "" if self.unit == "examples" else f" ({self.units} tokens)"
        return (f"{_precision(self.quantize)} ONNX vs PyTorch on {self.examples} examples{per} of {self.data}: "
                f"agreement {self.agreement:.4f}, max |Δprob| {self.max_prob_diff:.4g} "
                f"(min agreement {self.min_agreement})")

    def save(self, directory: str) -> None:
        with open(os.path.join(directory, PARITY_FILE), "w", encoding="utf-8") as handle:
            json.dump(dataclasses.asdict(self), handle, indent=2)

    @classmethod
    def load(cls, directory: str) -> Parity:
        with open(os.path.join(directory, PARITY_FILE), encoding="utf-8") as handle:
            return cls(**json.load(handle))


def export_onnx(predictor: Any, examples: Any, data_name: str, config: OnnxExportConfig) -> tuple[OnnxPredictor, Parity]:
    """``predictor``'s model as an ``OnnxPredictor`` and its parity on a sample of ``examples`` (named
    ``data_name``); a UserError when the model cannot be exported or its agreement is below the threshold."""
    check_options(config)
    check_exportable(predictor)
    sample = sample_examples(examples, config.parity_rows, config.seed)
    if not len(sample):
        raise UserError(f"no examples in {data_name} for the ONNX parity check: pass --parity-data FILE")
    features = predictor.featurize(sample)
    inputs = [key for key in BACKBONE_INPUTS if key in features[0]]
    with tempfile.TemporaryDirectory() as scratch:
        path = trace_to_onnx(predictor.model, inputs, os.path.join(scratch, "model.onnx"), config.opset)
        if config.quantize == "int8":
            path = quantize_int8(path, os.path.join(scratch, "model.int8.onnx"), config.float_ffn_output)
        with open(path, "rb") as handle:
            graph = handle.read()
    meta = {key: value for key, value in predictor.meta.items() if key not in ("kind", "layout")}
    meta |= {"max_length": predictor.max_length, "inputs": inputs, "quantize": config.quantize, "opset": config.opset,
             "exported_with": {"torch": torch.__version__}}
    exported = OnnxPredictor(graph, predictor.tokenizer, predictor.model.backbone.config, meta)
    # against the fp32 weights themselves, whatever precision the run predicts in
    parity = measure_parity(predictor.outputs(predictor.model, features, precision="no"), exported.outputs(features))
    unit = "tokens" if predictor.task.feature_kind == "tokens" else "examples"
    report = Parity(**parity, examples=len(sample), unit=unit, data=data_name, quantize=config.quantize,
                    min_agreement=config.min_agreement)
    if report.agreement < config.min_agreement:
        hint = "; export without --quantize for a float32 graph" if config.quantize == "int8" else ""
        raise UserError(f"refusing to write the {_precision(config.quantize)} ONNX model: its predicted class agrees "
                        f"with the PyTorch model's on {report.agreement:.4f} of {report.units} {report.unit} of "
                        f"{data_name} (max |Δprob| {report.max_prob_diff:.4g}), below --min-agreement "
                        f"{config.min_agreement}{hint}")
    return exported, report


def _precision(quantize: str) -> str:
    return "int8" if quantize == "int8" else "float32"


def check_options(config: OnnxExportConfig) -> None:
    """A one-line UserError for an option out of range."""
    if config.quantize not in ("none", "int8"):
        raise UserError(f"--quantize: unknown '{config.quantize}'; valid: int8 (or leave it out for float32)")
    if not 0.0 <= config.min_agreement <= 1.0:
        raise UserError(f"--min-agreement must be between 0 and 1, got {config.min_agreement}")
    if config.parity_rows < 1:
        raise UserError(f"the parity sample needs at least 1 example, got {config.parity_rows}")
    if config.opset < 17:
        raise UserError(f"ONNX opset {config.opset} is too old: the exporter needs 17 or later (LayerNormalization)")


def check_exportable(predictor: Any) -> None:
    """A one-line UserError unless ``predictor`` is a transformer encoder + a classification or tagging head."""
    if type(predictor) is not NeuralPredictor:  # TF-IDF, or a head on a frozen non-transformer text encoder
        raise UserError(f"a {type(predictor).__name__} model has no transformer network to export; {COVERS}")
    if isinstance(predictor.model.backbone, WordVectorModel):
        raise UserError(f"a word-vector model (static vectors + {predictor.model.backbone.config.encoder}) is not "
                        f"exported to ONNX; {COVERS}")
    if predictor.task.name not in ONNX_TASKS:
        raise UserError(f"a {predictor.task.name} run is not exported to ONNX; {COVERS}")


def sample_examples(examples: Any, rows: int, seed: int) -> Any:
    """At most ``rows`` examples, a seeded random sample in their original order."""
    if len(examples) <= rows:
        return examples
    picked = np.sort(np.random.default_rng(seed).choice(len(examples), size=rows, replace=False))
    return examples.subset(picked.tolist())


class _Logits(nn.Module):
    """The traced function: backbone inputs as tensors -> the primary head's logits (batch[, seq], labels)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            batch["token_type_ids"] = token_type_ids
        return self.model(batch)["logits"]


def trace_to_onnx(model: nn.Module, inputs: list[str], path: str, opset: int) -> str:
    """Write ``model``'s logits as an ONNX graph with dynamic (batch, sequence) inputs ``inputs``; returns ``path``.

    The example batch is (2, 8) with padding in one row, so neither axis is specialised to 0 or 1
    and the attention mask is a real input, not a constant.
    """
    example = {"input_ids": torch.arange(16).reshape(2, 8) % 5 + 1, "attention_mask": torch.ones(2, 8, dtype=torch.long),
               "token_type_ids": torch.zeros(2, 8, dtype=torch.long)}
    example["attention_mask"][1, 5:] = 0
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    shapes = tuple({0: batch, 1: sequence} for _ in inputs)  # one per positional argument
    wrapper = _Logits(model).eval()
    args = tuple(example[name] for name in inputs)
    muted = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the exporter's chatter ("torchvision is not installed", graph dumps)
    try:
        # torch.export prints a failed trace's partial graph to stderr: the UserError says what failed instead
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, args, path, input_names=inputs, output_names=["logits"],
                              dynamic_shapes=shapes,
                              opset_version=opset, dynamo=True, external_data=False, verbose=False)
    except ImportError as exc:
        raise UserError(f"ONNX export needs onnx and onnxscript ({exc}): pip install 'transferkit[export]'") from None
    except Exception as exc:  # the exporter's own error types vary by stage and version: name the op for the user
        raise untraceable(exc) from None
    finally:
        logging.disable(muted)
    return path


def untraceable(exc: BaseException) -> UserError:
    """A one-line UserError naming the op the exporter could not convert (from its chained errors), else
    the innermost reason and, when torch names it, the line of model code that could not be traced."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(str(error) for error in chain))
    found = re.search(r"OpOverload\(op='([^']+)'", text) or re.search(r"target=torch\.ops\.([\w.]+)", text)
    if found:
        op = found.group(1).removesuffix(".default")
        return UserError(f"the model cannot be exported to ONNX: it calls {op}, which torch {torch.__version__}'s "
                         "ONNX exporter cannot convert (replace that op in the model, or serve the run with PyTorch)")
    where = re.search(r'raised this error:\s*File "([^"]+)", line (\d+)', text)
    at = f" at {where.group(1)}:{where.group(2)}" if where else ""
    lines = [line.strip() for line in str(chain[-1]).splitlines() if line.strip()] or [""]
    return UserError(f"the model cannot be traced for ONNX export{at}: {type(chain[-1]).__name__}: {lines[0][:300]}")


def quantize_int8(source: str, target: str, float_ffn_output: bool = True) -> str:
    """onnxruntime dynamic int8 of ``source`` into ``target`` (per-channel symmetric MatMul/Gemm weights;
    with ``float_ffn_output`` the width-narrowing MatMuls, the FFN down-projections, stay float)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise UserError(f"int8 export needs onnxruntime and onnx ({exc}): pip install 'transferkit[export]'") from None
    prepared = target + ".pre.onnx"
    # graph optimisation + ONNX shape inference (symbolic inference cannot resolve the dynamic mask shapes)
    quant_pre_process(source, prepared, skip_symbolic_shape=True)
    keep_float = narrowing_matmuls(prepared) if float_ffn_output else []
    quantize_dynamic(prepared, target, op_types_to_quantize=["MatMul", "Gemm"], per_channel=True,
                     weight_type=QuantType.QInt8, nodes_to_exclude=keep_float)
    return target


def narrowing_matmuls(path: str) -> list[str]:
    """Names of the MatMul nodes whose constant weight (in, out) has ``in > out``: in a transformer encoder,
    each FFN's down-projection ``W_2`` (e.g. 1536 -> 384)."""
    import onnx

    graph = onnx.load(path).graph
    shapes = {tensor.name: tuple(tensor.dims) for tensor in graph.initializer}
    names = []
    for node in graph.node:
        weights = [shapes[name] for name in node.input if name in shapes and len(shapes[name]) == 2]
        if node.op_type == "MatMul" and weights and weights[0][0] > weights[0][1]:
            names.append(node.name)
    return names


def measure_parity(reference: Any, exported: Any) -> dict[str, Any]:
    """``agreement``, ``max_prob_diff`` and ``units`` of two models' logits (stacked, or per feature)."""
    p, q = softmax_rows(reference), softmax_rows(exported)
    return {"agreement": float(np.mean(p.argmax(axis=1) == q.argmax(axis=1))),
            "max_prob_diff": float(np.abs(p - q).max()), "units": int(len(p))}


def softmax_rows(logits: Any) -> np.ndarray:
    """(units, labels) float64 ``softmax(z)`` of stacked logits, or of per-feature (length_i, labels) arrays."""
    stacked = np.concatenate(logits) if isinstance(logits, list) else np.asarray(logits)
    stacked = stacked.reshape(-1, stacked.shape[-1]).astype(np.float64)
    shifted = np.exp(stacked - stacked.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
