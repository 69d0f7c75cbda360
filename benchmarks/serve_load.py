"""``transferkit serve`` under load on loopback, against (a) the same server at ``--max-batch-size 1`` and (b) a
20-line FastAPI app calling ``transferkit.load(RUN).predict([text])`` per request; optionally an int8 ONNX export
served by onnxruntime against the torch backend.

    python benchmarks/serve_load.py --out benchmarks/out/serve_load.json [--run RUN] [--onnx-int8 EXPORT_DIR]
        [--seconds 60] [--warmup 5] [--clients 1 8 32] [--texts 2000] [--max-requests 100000]
        [--server-threads 0]

Protocol (fixed before any result was seen):

* The model: ``--run RUN_DIR``, a finished classification run.  Absent, the benchmark trains the default one into
  ``<work>/run`` (``--work``, default ``benchmarks/out/serve_load``): MiniLM-L6 fine-tuned on 8,000 SST-2 sentences,
  1 epoch, max length 64 (``examples/sst2_finetune.yaml``, the same as
  ``transferkit train --config examples/sst2_finetune.yaml --output runs/sst2-finetune``).
  ``--onnx-int8 EXPORT_DIR``: an int8 ONNX export of that run; written when absent, as
  ``transferkit export RUN --format onnx --quantize int8 -o EXPORT_DIR`` does.
* The texts: SST-2 ``train.tsv`` from ``../shared/data`` (``$TRANSFERKIT_SHARED``), whole sentences of >= 4 words
  (as ``selection_data.py`` reads them), distinct; ``--texts`` (2,000) of them drawn with
  ``numpy.random.default_rng(0)``.  Short texts: ~20 words.  One sentence per request; request i carries sentence
  i mod 2,000 (the default run trained on sentences of the same file: this measures speed, not accuracy).
* The reference: ``transferkit predict`` (``predict_file``) on those sentences, once per model directory.  Every 200
  answer's label must equal the reference's label for that sentence (else it counts as a mismatch); the largest
  probability gap is reported.  For the int8 export, the reference is ``predict`` on the export itself, and the
  fraction of sentences whose int8 label equals the torch run's label is reported beside it.
* The servers, each a subprocess started alone on 127.0.0.1 (a free port), waited on through ``GET /health``,
  measured, then stopped (SIGINT), in this order: ``serve`` = ``transferkit serve RUN`` (defaults: dynamic batching,
  ``--max-batch-size 32 --max-wait-ms 5``); (a) ``batch1`` = the same with ``--max-batch-size 1``; (b) ``fastapi`` =
  ``uvicorn serve_load_baseline:app`` (``benchmarks/serve_load_baseline.py``); then ``onnx`` =
  ``transferkit serve EXPORT_DIR --backend onnx`` at 1 and 32 clients only.  Every server gets the same thread
  settings: ``--server-threads N`` sets ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` of each; 0 (the default) leaves
  torch's and onnxruntime's defaults.
* A cell = one server x one client count (``--clients``, default 1, 8, 32): ``--warmup`` seconds (5) of the same load,
  not counted, then ``--seconds`` (60) of closed-loop load by that many asyncio + httpx clients (each sends its next
  request when its answer arrives), stopped early at ``--max-requests`` requests (100,000).  Throughput = answered
  requests / wall seconds of the cell (= texts/s); p50/p99 over the answered requests' latencies; errors = any
  request without a 200 and one prediction (refusals, timeouts, dropped connections).
* The client runs in this process on the same machine as the server (loopback: no network, but the cores are
  shared; the client's and the server's CPU seconds are recorded per cell).  On a small machine the thread setting
  matters: in a smoke run on a loaded 2-core VM, ``serve`` answered 15 req/s at 8 clients with torch's 2 intra-op
  threads and 191 req/s with ``OMP_NUM_THREADS=1`` (3-s cells, a 2-layer test model); report it with the figures.
  Before the first cell the CPU (``lscpu``: model and flags), torch's thread count, the load average and the other
  busiest processes (what else ran) are printed and stored.  Nothing is repeated: one cell per server and client
  count, in one run, so the ratios compare numbers measured side by side.

Output: a Markdown table (throughput, p50, p99, errors per server and client count, and the ratios
serve / batch1 and serve / fastapi), the ONNX comparison, and everything as JSON in ``--out``.  A benchmark, not a
test: exit status 0 unless a server fails to start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path[:0] = [str(ROOT), str(BENCH)]

from selection_data import _sst2, shared_data  # noqa: E402
from serve_load_client import measure  # noqa: E402

from transferkit.core.machine import cpu_flags  # noqa: E402

ONNX_CLIENTS = (1, 32)


def sentences(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct SST-2 sentences of >= 4 words, drawn with ``default_rng(seed)``."""
    unique = list(dict.fromkeys(" ".join(text.split()) for text, _ in _sst2(shared_data())))
    order = np.random.default_rng(seed).permutation(len(unique))[:count]
    return [unique[i] for i in order]


def default_run(work: Path) -> str:
    """The default run (``examples/sst2_finetune.yaml``), trained once into ``work/run``."""
    from transferkit.experiments.api import make_config
    from transferkit.experiments.run import train

    output = work / "run"
    if not (output / "metrics.json").exists():
        print(f"training the default run into {output} (examples/sst2_finetune.yaml)", flush=True)
        train(make_config(str(ROOT / "examples" / "sst2_finetune.yaml"), [
            f"data.train={shared_data() / 'sst2' / 'train.tsv'}", f"output={output}", "training.progress=false"]))
    return str(output)


def int8_export(run: str, target: str) -> str:
    """``target``, exported from ``run`` (ONNX, int8) when it does not exist yet."""
    if not os.path.exists(target):
        from transferkit.experiments.api import export_run
        from transferkit.serving.onnx_export import OnnxExportConfig

        print(f"exporting {run} to {target} (ONNX, int8)", flush=True)
        export_run(run, target, to="onnx", onnx=OnnxExportConfig(quantize="int8"))
    return target


def reference(model_dir: str, texts: list[str], work: Path, name: str) -> list[dict[str, Any]]:
    """``transferkit predict``'s records for ``texts`` (``predict_file`` on a JSONL of them)."""
    from transferkit.experiments.api import predict_file

    inputs, outputs = work / "texts.jsonl", work / f"reference-{name}.jsonl"
    with open(inputs, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in texts)
    predict_file(model_dir, str(inputs), str(outputs), text_column="text")
    with open(outputs, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert len(records) == len(texts), f"predict wrote {len(records)} records for {len(texts)} texts"
    return records


def machine() -> dict[str, Any]:
    """CPU model and flags (``lscpu``), torch threads, load average and the other busiest processes now."""
    import torch

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout if os.name == "posix" else ""
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    return {"cpu": fields.get("Model name", "").strip() or cpu_flags(), "cpus": os.cpu_count(),
            "flags": fields.get("Flags", "").strip() or cpu_flags(), "torch_threads": torch.get_num_threads(),
            "load_average": list(os.getloadavg()), "other_processes": busiest_processes()}


def busiest_processes(top: int = 5) -> list[dict[str, Any]]:
    """The other processes using more than 1% of a CPU over one second (what else ran)."""
    processes = list(psutil.process_iter(["pid", "name", "cmdline"]))
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.cpu_percent(None)
    time.sleep(1.0)
    busy = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.pid != os.getpid():
                busy.append((process.cpu_percent(None), " ".join(process.info["cmdline"] or [process.info["name"]])))
    return [{"cpu_percent": cpu, "command": command[:160]} for cpu, command in sorted(busy, reverse=True)[:top]
            if cpu > 1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server subprocess: started alone, ready when ``GET /health`` answers 200, stopped with SIGINT."""

    def __init__(self, name: str, command: list[str], port: int, log: Path, env: dict[str, str] | None = None):
        self.name, self.command, self.port, self.log, self.env = name, command, port, log, env
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> Server:
        self.handle = open(self.log, "w", encoding="utf-8")  # noqa: SIM115  # closed in __exit__
        self.process = subprocess.Popen(self.command, stdout=self.handle, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(self.env or {})}, cwd=ROOT)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 900.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name}: the server exited ({self.process.returncode}); see {self.log}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"{self.name}: not healthy after {timeout:.0f} s; see {self.log}")

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.handle.close()


def servers(run: str, export: str | None, work: Path, threads: int) -> list[tuple[Server, tuple[int, ...] | None]]:
    """The servers in the order they run, with the client counts each gets (None: all of ``--clients``); every
    server gets the same thread settings (``threads`` 0: torch's and onnxruntime's defaults)."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}
    serve = [sys.executable, "-m", "transferkit", "serve"]
    arms = []
    for name, extra in (("serve", []), ("batch1", ["--max-batch-size", "1"])):
        port = free_port()
        command = [*serve, run, "--port", str(port), *extra]
        arms.append((Server(name, command, port, work / f"{name}.log", env), None))
    port = free_port()
    baseline = [sys.executable, "-m", "uvicorn", "serve_load_baseline:app", "--app-dir", str(BENCH), "--host",
                "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    arms.append((Server("fastapi", baseline, port, work / "fastapi.log", env | {"SERVE_LOAD_RUN": run}), None))
    if export:
        port = free_port()
        command = [*serve, export, "--backend", "onnx", "--port", str(port)]
        arms.append((Server("onnx", command, port, work / "onnx.log", env), ONNX_CLIENTS))
    return arms


def run_cells(args: argparse.Namespace, arms: list, texts: list[str], references: dict[str, list]) -> list[dict]:
    """Every server, started alone, at each of its client counts."""
    cells = []
    for server, counts in arms:
        expected = references["onnx" if server.name == "onnx" else "torch"]
        with server:
            for clients in counts or args.clients:
                cpu = server.cpu_seconds()
                cell = measure(f"{server.url}/predict", texts, expected, clients, args.seconds, args.warmup,
                               args.max_requests)
                cell |= {"server": server.name, "server_cpu_seconds": server.cpu_seconds() - cpu}
                cells.append(cell)
                print(f"{server.name:8s} {clients:3d} clients: {cell['throughput']:8.1f} req/s, p50 "
                      f"{cell['p50_ms'] or float('nan'):.1f} ms, p99 {cell['p99_ms'] or float('nan'):.1f} ms, "
                      f"{cell['errors']} errors, {cell['mismatches']} mismatches"
                      + (f" (first error: {cell['first_error']})" if cell["first_error"] else ""), flush=True)
    return cells


def ratios(cells: list[dict]) -> dict[str, dict[int, float]]:
    """serve / batch1, serve / fastapi and onnx / serve throughput at every client count both measured."""
    by = {(cell["server"], cell["clients"]): cell["throughput"] for cell in cells}
    out: dict[str, dict[int, float]] = {}
    for other, key in (("batch1", "serve/batch1"), ("fastapi", "serve/fastapi"), ("onnx", "onnx/serve")):
        for (server, clients), value in by.items():
            if server == other and ("serve", clients) in by and value > 0:
                serve = by["serve", clients]
                out.setdefault(key, {})[clients] = value / serve if other == "onnx" else serve / value
    return out


def markdown(cells: list[dict], found: dict[str, dict[int, float]], agreement: float | None) -> str:
    """The results as Markdown: one row per client count, each server's figures and the ratios side by side."""
    names = [name for name in ("serve", "batch1", "fastapi", "onnx") if any(c["server"] == name for c in cells)]
    header = ["clients"] + [f"{n} {what}" for n in names for what in ("req/s", "p50 ms", "p99 ms", "errors")]
    header += list(found)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for clients in sorted({cell["clients"] for cell in cells}):
        row = [str(clients)]
        for name in names:
            cell = next((c for c in cells if c["server"] == name and c["clients"] == clients), None)
            row += ["—"] * 4 if cell is None else [
                f"{cell['throughput']:.1f}", _ms(cell["p50_ms"]), _ms(cell["p99_ms"]),
                f"{cell['errors']}" + (f" (+{cell['mismatches']} mismatched)" if cell["mismatches"] else "")]
        row += [f"{found[key][clients]:.2f}x" if clients in found[key] else "—" for key in found]
        lines.append("| " + " | ".join(row) + " |")
    if agreement is not None:
        lines.append(f"\nint8 ONNX labels equal to the torch run's on {agreement:.2%} of the texts.")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON results file")
    parser.add_argument("--run", help="a finished classification run (default: train examples/sst2_finetune.yaml)")
    parser.add_argument("--onnx-int8", help="an int8 ONNX export of the run (written when absent)")
    parser.add_argument("--work", default=str(BENCH / "out" / "serve_load"), help="default run, references, logs")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds of load before each cell")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients per cell")
    parser.add_argument("--texts", type=int, default=2000, help="distinct SST-2 sentences sent")
    parser.add_argument("--max-requests", type=int, default=100_000, help="requests per cell at most")
    parser.add_argument("--server-threads", type=int, default=0,
                        help="OMP/MKL threads of every server process (0: the libraries' defaults)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    run = args.run or default_run(work)
    export = int8_export(run, args.onnx_int8) if args.onnx_int8 else None
    texts = sentences(args.texts)
    references = {"torch": reference(run, texts, work, "torch")}
    agreement = None
    if export:
        references["onnx"] = reference(export, texts, work, "onnx")
        agreement = float(np.mean([a["label"] == b["label"] for a, b in zip(references["torch"], references["onnx"],
                                                                               strict=True)]))
    facts = machine()
    print(f"CPU: {facts['cpu']} ({facts['cpus']} cpus), torch threads {facts['torch_threads']}, load average "
          f"{' '.join(f'{x:.2f}' for x in facts['load_average'])}\nflags: {facts['flags']}\nother processes: "
          + ("; ".join(f"{p['cpu_percent']:.0f}% {p['command']}" for p in facts["other_processes"]) or "none busy"),
          flush=True)
    cells = run_cells(args, servers(run, export, work, args.server_threads), texts, references)
    found = ratios(cells)
    print(markdown(cells, found, agreement))
    results = {"protocol": vars(args) | {"run": run, "onnx_int8": export, "texts_drawn": len(texts)},
               "machine": facts | {"load_average_after": list(os.getloadavg())}, "cells": cells,
               "ratios": {key: {str(k): v for k, v in value.items()} for key, value in found.items()},
               "int8_label_agreement": agreement}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
