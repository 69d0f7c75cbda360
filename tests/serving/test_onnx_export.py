"""``transferkit export RUN --format onnx [--quantize int8]``: a copy of the run whose model runs in onnxruntime.

The float32 graph gives the PyTorch model's probabilities to 1e-4 (classification) and its tags (NER);
int8 writes, loads and reports its agreement; an export below ``--min-agreement``, a model with an op the
exporter cannot convert and a run without a transformer network are refused with one line, nothing written.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import onnx
import pytest
import torch
import yaml

import transferkit
from tests.helpers import one_line_error, run_cli
from transferkit.core.config import DataConfig, RunConfig
from transferkit.experiments.api import evaluate_run, export_run
from transferkit.experiments.run import train
from transferkit.modules.heads import ClassificationHead
from transferkit.serving import load_predictor, onnx_export
from transferkit.serving.onnx_export import OnnxExportConfig, Parity, trace_to_onnx
from transferkit.serving.onnx_predictor import OnnxPredictor, onnx_session
from transferkit.testing import write_toy_conll, write_toy_csv

REAL_QUANTIZE = onnx_export.quantize_int8


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[str, str]]:
    root = tmp_path_factory.mktemp("onnx_data")
    return {"classification": (write_toy_csv(str(root / "train.csv"), 120, 0), write_toy_csv(str(root / "eval.csv"), 40, 1)),
            "token_classification": (write_toy_conll(str(root / "train.conll"), 80, 0),
                                     write_toy_conll(str(root / "eval.conll"), 20, 1))}


def train_run(root, model: str, task: str, strategy: str, files: dict, epochs: int = 2) -> str:
    output = str(root / "run")
    train(RunConfig.from_dict({
        "model": model, "strategy": strategy, "output": output, "task": {"name": task},
        "data": {"train": files[task][0], "eval": files[task][1], "text_column": "sentence", "max_length": 64},
        "training": {"epochs": epochs, "batch_size": 16, "learning_rate": 3e-3, "progress": False, "checkpoint_every": 0},
    }))
    return output


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory, tiny_model, files) -> str:
    return train_run(tmp_path_factory.mktemp("cls"), tiny_model, "classification", "finetune", files)


@pytest.fixture(scope="module")
def float_export(classification_run, tmp_path_factory) -> str:
    return export_run(classification_run, str(tmp_path_factory.mktemp("fp32") / "onnx"), to="onnx")


def eval_examples(predictor, path: str):
    return predictor.task.read(path, DataConfig(text_column="sentence"))


def test_float32_export_predicts_the_pytorch_probabilities(classification_run, float_export, files) -> None:
    torch_model, exported = load_predictor(classification_run), load_predictor(float_export)
    assert isinstance(exported, OnnxPredictor) and exported.labels == torch_model.labels
    examples = eval_examples(torch_model, files["classification"][1])
    np.testing.assert_allclose(exported.predict(examples), torch_model.predict(examples), atol=1e-4)
    parity = Parity.load(os.path.join(float_export, "model"))
    assert parity.agreement == 1.0 and parity.max_prob_diff < 1e-4 and parity.examples == 40
    assert parity.data == files["classification"][1] and parity.unit == "examples"
    written = set(os.listdir(os.path.join(float_export, "model")))
    assert {"labels.json", "model.onnx", "parity.json", "transferkit.json"} <= written
    assert "model.safetensors" not in written and os.path.isfile(os.path.join(float_export, "config.yaml"))
    inputs = [i.name for i in onnx.load(os.path.join(float_export, "model", "model.onnx")).graph.input]
    assert inputs == ["input_ids", "attention_mask", "token_type_ids"]
    model = transferkit.load(float_export)  # the Python API and evaluate work on the exported run too
    assert model.predict(["a gripping film"]) == transferkit.load(classification_run).predict(["a gripping film"])
    assert evaluate_run(float_export, files["classification"][1])["accuracy"] == pytest.approx(
        evaluate_run(classification_run, files["classification"][1])["accuracy"])


def test_predict_command_runs_the_exported_model(classification_run, float_export, files, tmp_path, capsys,
                                                 monkeypatch) -> None:
    rows = {}
    for name, run in (("torch", classification_run), ("onnx", float_export)):
        target = str(tmp_path / f"{name}.jsonl")
        code, out, err = run_cli(["predict", run, "-i", files["classification"][1], "-o", target], capsys, monkeypatch)
        assert code == 0 and "wrote 40 predictions" in out, err
        with open(target, encoding="utf-8") as handle:
            rows[name] = [json.loads(line) for line in handle]
    assert [row["label"] for row in rows["onnx"]] == [row["label"] for row in rows["torch"]]


def test_int8_export_writes_loads_and_reports_its_agreement(classification_run, files, tmp_path, capsys,
                                                            monkeypatch) -> None:
    target = str(tmp_path / "int8")
    code, out, err = run_cli(["export", classification_run, "--format", "onnx", "--quantize", "int8", "-o", target,
                              "--parity-data", files["classification"][0]], capsys, monkeypatch)
    assert code == 0 and f"ONNX model written to {target}" in out and "agreement" in out, err
    assert len(out.strip().splitlines()) == 1
    parity = Parity.load(os.path.join(target, "model"))
    assert parity.quantize == "int8" and parity.examples == 120 and parity.agreement >= 0.99, parity
    assert parity.data == files["classification"][0] and f"agreement {parity.agreement:.4f}" in out
    graph = onnx.load(os.path.join(target, "model", "model.onnx"))
    assert "MatMulInteger" in {node.op_type for node in graph.graph.node}  # the weights really are int8
    exported, torch_model = load_predictor(target), load_predictor(classification_run)
    examples = eval_examples(torch_model, files["classification"][1])
    agree = np.mean(exported.predict(examples).argmax(1) == torch_model.predict(examples).argmax(1))
    assert agree >= 0.95 and exported.meta["quantize"] == "int8"


def test_a_tokenizer_without_token_type_ids_gives_a_two_input_graph(classification_run, tmp_path) -> None:
    """XLM-R/E5-style tokenizers give no token_type_ids: the graph then takes exactly the two inputs."""
    model = load_predictor(classification_run).model
    session = onnx_session(trace_to_onnx(model, ["input_ids", "attention_mask"], str(tmp_path / "two.onnx"), 18))
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    ids = np.random.default_rng(0).integers(5, 50, (3, 13))
    mask = np.ones_like(ids)
    mask[1, 9:] = 0
    with torch.no_grad():
        expected = model({"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)})["logits"].numpy()
    np.testing.assert_allclose(session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0], expected,
                               atol=1e-5)


def test_int8_keeps_each_ffn_down_projection_float(classification_run, tmp_path) -> None:
    """float_ffn_output: one width-narrowing MatMul per layer (W_2) stays a float MatMul; the rest are int8."""
    model = load_predictor(classification_run).model
    source = trace_to_onnx(model, ["input_ids", "attention_mask"], str(tmp_path / "fp32.onnx"), 18)
    layers = model.backbone.config.num_hidden_layers
    kinds = {}
    for keep in (True, False):
        graph = onnx.load(REAL_QUANTIZE(source, str(tmp_path / f"int8_{keep}.onnx"), keep)).graph
        kinds[keep] = [node.op_type for node in graph.node]
    narrowing = onnx_export.narrowing_matmuls(str(tmp_path / "int8_True.onnx.pre.onnx"))
    assert len(narrowing) == layers
    assert kinds[True].count("MatMul") - kinds[False].count("MatMul") == layers
    assert "MatMulInteger" in kinds[True] or "DynamicQuantizeMatMul" in kinds[True]


def negated_logits(source: str, target: str, float_ffn_output: bool = True) -> str:
    """A 'quantized' model whose logits are negated: argmax becomes argmin, so agreement drops to ~0."""
    path = REAL_QUANTIZE(source, target, float_ffn_output)
    model = onnx.load(path)
    for node in model.graph.node:
        node.output[:] = ["raw_logits" if name == "logits" else name for name in node.output]
    model.graph.node.append(onnx.helper.make_node("Neg", ["raw_logits"], ["logits"]))
    onnx.save(model, path)
    return path


def test_export_below_the_agreement_threshold_is_refused_and_writes_nothing(classification_run, tmp_path,
                                                                          monkeypatch) -> None:
    monkeypatch.setattr(onnx_export, "quantize_int8", negated_logits)
    target = str(tmp_path / "bad")
    message = one_line_error(lambda: export_run(classification_run, target, to="onnx",
                                                onnx=OnnxExportConfig(quantize="int8", min_agreement=0.9)),
                             "refusing to write the int8 ONNX model", "below --min-agreement 0.9")
    assert "agrees with the PyTorch model's on 0.0" in message
    assert not os.path.exists(target) and not os.path.exists(target + ".partial")


UNTRACEABLE = {  # a head whose forward the exporter cannot handle, and what the error must name
    "op": (lambda self, features: self.classifier(torch.special.bessel_j0(features)),
           ("cannot be exported to ONNX", "prims.bessel_j0", "cannot convert")),
    "data-dependent branch": (lambda self, features: self.classifier(features if features.sum() > 0 else -features),
                              ("cannot be traced for ONNX export at ", "test_onnx_export.py:", "data-dependent")),
}


@pytest.mark.parametrize("case", sorted(UNTRACEABLE))
def test_a_model_the_exporter_cannot_trace_is_refused_naming_the_op_or_line(case, classification_run, tmp_path,
                                                                           monkeypatch) -> None:
    project, fragments = UNTRACEABLE[case]
    monkeypatch.setattr(ClassificationHead, "project", project)
    target = str(tmp_path / "untraceable")
    one_line_error(lambda: export_run(classification_run, target, to="onnx"), *fragments)
    assert not os.path.exists(target) and not os.path.exists(target + ".partial")


def test_token_classification_export_tags_as_the_pytorch_model(tmp_path_factory, tiny_model, files) -> None:
    run = train_run(tmp_path_factory.mktemp("ner"), tiny_model, "token_classification", "finetune", files, epochs=1)
    target = export_run(run, str(tmp_path_factory.mktemp("ner_onnx") / "onnx"), to="onnx")
    torch_model, exported = load_predictor(run), load_predictor(target)
    examples = torch_model.task.read(files["token_classification"][1], DataConfig())
    assert exported.predict(examples) == torch_model.predict(examples)
    parity = Parity.load(os.path.join(target, "model"))
    assert parity.unit == "tokens" and parity.units > parity.examples == 20 and parity.agreement == 1.0


def test_runs_without_a_transformer_network_are_refused(tmp_path_factory, tiny_model, tiny_vectors, files,
                                                        tmp_path) -> None:
    tfidf = train_run(tmp_path_factory.mktemp("tfidf"), tiny_model, "classification", "tfidf", files)
    one_line_error(lambda: export_run(tfidf, str(tmp_path / "a"), to="onnx"), tfidf, "TfidfPredictor",
                   "no transformer network", "ONNX export covers classification")
    vectors = train_run(tmp_path_factory.mktemp("wv"), tiny_vectors, "classification", "word_vectors", files, epochs=1)
    one_line_error(lambda: export_run(vectors, str(tmp_path / "b"), to="onnx"), "word-vector model",
                   "ONNX export covers")
    assert not os.listdir(tmp_path)


def test_missing_eval_data_asks_for_parity_data(classification_run, tmp_path) -> None:
    moved = str(tmp_path / "moved")
    shutil.copytree(classification_run, moved)
    with open(os.path.join(moved, "config.yaml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    config["data"]["eval"] = str(tmp_path / "gone.csv")
    with open(os.path.join(moved, "config.yaml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    one_line_error(lambda: export_run(moved, str(tmp_path / "out"), to="onnx"),
                   "cannot read the run's eval data", "--parity-data FILE")
    one_line_error(lambda: export_run(moved, str(tmp_path / "out"), to="onnx",
                                      onnx=OnnxExportConfig(quantize="int4")), "unknown 'int4'")
    assert not os.path.exists(tmp_path / "out")
