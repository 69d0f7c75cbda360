"""int8 with every MatMul quantized vs int8 with the FFN down-projections in float, against PyTorch fp32.

    python benchmarks/int8_ffn_float.py DISTILL_OUT   # the OUT of benchmarks/distill_sst2.py (its teacher runs)

Agreement with the fp32 teacher on the held-out test sentences, and batch-1 latency of the three forms
(300 sentences, median of 3, interleaved).  The CPU's flags are printed.  A benchmark, not a test.
"""

import csv
import statistics
import sys
import tempfile
import time

import torch

from transferkit.core.contracts import TextExamples
from transferkit.core.machine import cpu_flags
from transferkit.experiments.api import load  # noqa: E402
from transferkit.serving.onnx_export import measure_parity, quantize_int8
from transferkit.serving.onnx_predictor import onnx_session

D = sys.argv[1]
with open(f"{D}/data/test.tsv", encoding="utf-8") as handle:
    rows = list(csv.reader(handle, delimiter="\t"))
texts = [r[0] for r in rows[1:]]
teacher = load(f"{D}/runs/teacher").predictor
onnx_model = load(f"{D}/runs/teacher_onnx").predictor
feats = teacher.featurize(TextExamples(texts))
ref = teacher.outputs(teacher.model, feats, precision="no")
tmp = tempfile.mkdtemp()
src = f"{D}/runs/teacher_onnx/model/model.onnx"
sessions = {}
for keep in (False, True):
    sessions[keep] = onnx_session(quantize_int8(src, f"{tmp}/int8_{keep}.onnx", keep))
    onnx_model.session = sessions[keep]
    p = measure_parity(ref, onnx_model.outputs(feats))
    print(f"float_ffn_output={keep}: agreement {p['agreement']:.4f} on {p['units']} test sentences, max |dprob| {p['max_prob_diff']:.3f}", flush=True)
sample = feats[:300]
times = {"pytorch": [], "int8_all": [], "int8_ffn_float": []}
for _ in range(3):
    for name in times:
        t = time.perf_counter()
        if name == "pytorch":
            for f in sample:
                teacher.outputs(teacher.model, [f], precision="no")
        else:
            onnx_model.session = sessions[name == "int8_ffn_float"]
            for f in sample:
                onnx_model.outputs([f])
        times[name].append(time.perf_counter() - t)
med = {k: statistics.median(v) for k, v in times.items()}
print("batch 1, 300 sentences, median of 3 interleaved:", {k: f"{v:.2f}s" for k, v in med.items()},
      f"speedup int8_all {med['pytorch']/med['int8_all']:.2f}x, int8_ffn_float {med['pytorch']/med['int8_ffn_float']:.2f}x")
print("CPU:", cpu_flags(), "threads", torch.get_num_threads())
