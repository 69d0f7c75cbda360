"""``transferkit`` command line: thin commands that build a config and call the Python API.

User mistakes print one line (``error: ...``) and exit with code 2, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from typing import Annotated

import click
import typer

from transferkit.cli import choose
from transferkit.cli import tune as tune_command
from transferkit.core.errors import UserError, closest

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Transfer learning for NLP: adapt a pretrained model and measure which strategy wins.")

TRAIN_FLAGS = {  # CLI flag -> dotted config key
    "model": "model", "strategy": "strategy", "task": "task", "train_file": "data.train", "eval_file": "data.eval",
    "test_file": "data.test", "text_column": "data.text_column", "text_pair_column": "data.text_pair_column",
    "label_column": "data.label_column", "format_": "data.format", "output": "output",
}


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # library deprecation chatter users cannot act on (peft calls a deprecated transformers property)
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", message="Token type ids are not supported", module="peft")
    logger = logging.getLogger("transferkit")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (so redirection and capture work)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


@app.command()
def train(
    config: Annotated[str | None, typer.Option("--config", "-c", help="run config YAML")] = None,
    model: Annotated[str | None, typer.Option(help="catalog name, model directory or hub id")] = None,
    strategy: Annotated[str | None, typer.Option(help="strategy name (see `transferkit strategies`)")] = None,
    task: Annotated[str | None, typer.Option(help="task name")] = None,
    train_file: Annotated[str | None, typer.Option("--train", help="training data file")] = None,
    eval_file: Annotated[str | None, typer.Option("--eval", help="evaluation data file")] = None,
    test_file: Annotated[str | None, typer.Option("--test", help="test data file")] = None,
    text_column: Annotated[str | None, typer.Option(help="text column")] = None,
    text_pair_column: Annotated[str | None, typer.Option(help="second text column (pairs)")] = None,
    label_column: Annotated[str | None, typer.Option(help="label column")] = None,
    format_: Annotated[str | None, typer.Option(
        "--format", help="data format (default: by file): csv, tsv, jsonl, conll, chinese_bio, msra, squad, amazon_reviews")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="run directory to write")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="dotted override, e.g. training.epochs=2")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue an interrupted run from its checkpoint")] = False,
) -> None:
    """Train and evaluate one run; writes config.yaml, metrics.json, model/, card.md.

    Prints one JSON line: the task's report metrics on eval and on every test set, and
    ``selected_on`` ("eval" when best-checkpoint restore chose the model on eval: those figures are optimistic).
    """
    from transferkit.experiments.api import train as train_run
    from transferkit.experiments.grid_results import task_info
    from transferkit.reporting.report_split import stored_test_sets
    from transferkit.reporting.task_metrics import task_name

    values = locals()
    flags = [f"{key}={values[name]}" for name, key in TRAIN_FLAGS.items() if values[name] is not None]
    result = train_run(config, [*flags, *(set_ or [])], resume=resume)
    keys = task_info(task_name(result.config)).metrics

    def summary(split_metrics: dict) -> dict:
        return {k: split_metrics[k] for k in keys if k in split_metrics}

    printed = {"output": result.output, "eval": summary(result.metrics["eval"])}
    tests = stored_test_sets(result.metrics)
    if tests:
        printed["test"] = {name: summary(metrics) for name, metrics in tests.items()}
    printed |= {"selected_on": result.metrics.get("selected_on"),
                "train_seconds": round(result.metrics["train_seconds"], 2)}
    typer.echo(json.dumps(printed))


@app.command()
def evaluate(
    run_dir: Annotated[str, typer.Argument(help="a finished run directory")],
    data: Annotated[str, typer.Option("--data", help="labelled data file")],
    text_column: Annotated[str | None, typer.Option(help="text column (default: the run's)")] = None,
    label_column: Annotated[str | None, typer.Option(help="label column (default: the run's)")] = None,
    text_pair_column: Annotated[str | None, typer.Option(help="second text column")] = None,
    task: Annotated[str | None, typer.Option("--task", help="a multi-task model's task, or the stage of a stream "
                                                            "learned in the task setting")] = None,
) -> None:
    """Print the run's metrics on DATA as JSON."""
    from transferkit.experiments.api import evaluate_run

    typer.echo(json.dumps(evaluate_run(run_dir, data, text_column, label_column, text_pair_column, task), indent=2))


@app.command()
def predict(
    run_dir: Annotated[str, typer.Argument(help="a finished run directory")],
    input_path: Annotated[str, typer.Option("--input", "-i", help="file with texts")],
    output_path: Annotated[str, typer.Option("--output", "-o", help="predictions file (.jsonl or .csv)")],
    text_column: Annotated[str | None, typer.Option(help="text column (default: the run's)")] = None,
    text_pair_column: Annotated[str | None, typer.Option(help="second text column")] = None,
    task: Annotated[str | None, typer.Option("--task", help="a multi-task model's task (a data source's name; "
                                                            "default: main, the run's own), or the stage of a stream "
                                                            "learned in the task setting (required there)")] = None,
) -> None:
    """Write the predicted label and class probabilities for every input row."""
    from transferkit.experiments.api import predict_file

    count = predict_file(run_dir, input_path, output_path, text_column, text_pair_column, task)
    typer.echo(f"wrote {count} predictions to {output_path}")


@app.command()
def export(
    run_dir: Annotated[str, typer.Argument(help="a finished run directory")],
    output: Annotated[str, typer.Option("--output", "-o", help="directory to write")],
    merge: Annotated[bool, typer.Option("--merge", help="fold a LoRA/IA3/BitFit delta into full model weights")] = False,
    to: Annotated[str | None, typer.Option(
        "--format", help="transformers: a model directory AutoModelFor.../pipeline load (token classification, "
                         "QA and summarization runs); onnx: a copy of the run whose model is an ONNX graph that "
                         "predict/evaluate run in onnxruntime (classification and token classification runs); "
                         "a delta is merged first")] = None,
    quantize: Annotated[str | None, typer.Option(
        help="with --format onnx: int8 = onnxruntime dynamic int8 weights (MatMul/Gemm)")] = None,
    min_agreement: Annotated[float, typer.Option(
        help="with --format onnx: refuse the export when its predicted class agrees with the PyTorch model's "
             "on less than this share of the parity sample")] = 0.99,
    parity_data: Annotated[str | None, typer.Option(
        help="with --format onnx: file the parity check samples (default: the run's eval data)")] = None,
) -> None:
    """Write a copy of a run with a self-contained model (--merge) or an ONNX model, or its model in transformers' format."""
    from transferkit.experiments.api import export_run
    from transferkit.serving.onnx_export import OnnxExportConfig, Parity

    if to != "onnx" and (quantize is not None or parity_data is not None):
        raise UserError("--quantize and --parity-data go with --format onnx")
    options = OnnxExportConfig(quantize=quantize or "none", min_agreement=min_agreement)
    path = export_run(run_dir, output, merge, to, options, parity_data)
    if to == "onnx":
        typer.echo(f"ONNX model written to {path}; {Parity.load(os.path.join(path, 'model')).summary()}")
    else:
        typer.echo(f"transformers model written to {path}" if to else f"merged model written to {path}")


@app.command()
def serve(
    run_dir: Annotated[str, typer.Argument(help="a finished run directory, or one written by `export --format onnx`")],
    host: Annotated[str, typer.Option(help="interface to listen on (loopback: only this machine can connect)")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    backend: Annotated[str | None, typer.Option(
        help="torch (the run's model) or onnx (an ONNX export, run by onnxruntime); default: what RUN_DIR holds")] = None,
    token_file: Annotated[str | None, typer.Option(help="file with the bearer token /predict and /info require")] = None,
    max_batch_size: Annotated[int, typer.Option(help="inputs per model call, gathered across requests")] = 32,
    max_wait_ms: Annotated[float, typer.Option(help="wait for more requests before a batch runs (ms)")] = 5.0,
    max_queue: Annotated[int, typer.Option(help="requests waiting for the model; one more gets 429")] = 512,
    max_texts: Annotated[int, typer.Option(help="inputs per request; more gets 413")] = 256,
    max_chars: Annotated[int, typer.Option(help="characters per text; more gets 413")] = 10_000,
) -> None:
    """Serve a run over HTTP: POST /predict, GET /health /info /metrics (FastAPI + uvicorn, dynamic batching)."""
    try:
        from transferkit.serving.server import ServeConfig
        from transferkit.serving.server import serve as run_server
    except ImportError as exc:
        raise UserError(f"transferkit serve needs FastAPI, uvicorn and prometheus_client ({exc}): "
                        "pip install 'transferkit[serve]'") from None
    run_server(ServeConfig(run_dir, host, port, backend, token_file, max_batch_size, max_wait_ms, max_queue,
                           max_texts, max_chars))


@app.command()
def demo(
    output: Annotated[str | None, typer.Option("--output", "-o", help="where to write the runs")] = None,
) -> None:
    """Offline demo: tfidf vs feature extraction vs fine-tuning on BBC News at two label budgets."""
    from transferkit.experiments.demo import run_demo
    from transferkit.reporting import print_table

    rows, directory = run_demo(output)
    columns = ["strategy", "k/class", "accuracy", "95% CI", "macro F1", "train s", "trained params"]
    print_table(rows, columns, title="BBC News (5 topics), MiniLM-L6, eval = a held-out 20% of the articles")
    typer.echo(f"runs written to {directory}")


app.command("select")(choose.select)
app.command("advise")(choose.advise)
app.command("tune")(tune_command.tune)


@app.command()
def models() -> None:
    """List the model catalog."""
    from transferkit.models import available, catalog_entries

    for entry in catalog_entries():
        status = "available" if available(entry) else "not available"
        shapes = {"vectors": f"static vectors, {entry.hidden_size}-d",
                  "text_encoder": f"frozen text encoder ({entry.architecture}), {entry.hidden_size}-d"}
        shape = shapes.get(entry.kind, f"{entry.architecture} {entry.layers}x{entry.hidden_size}")
        typer.echo(f"{entry.name:<26} {shape}, {entry.params / 1e6:.1f}M params, {status}\n{'':<27}{entry.description}")


@app.command()
def strategies() -> None:
    """List the registered strategies, the tasks they support and their options."""
    from transferkit.core.config import describe
    from transferkit.strategies import STRATEGIES

    for name in STRATEGIES.names():
        cls = STRATEGIES.get(name)
        typer.echo(f"{name} (tasks: {', '.join(sorted(cls.supports))})")
        for field, _, default, help_text in describe(cls.Config):
            typer.echo(f"    {field} = {default!r}: {help_text}")


@app.command()
def grid(
    spec: Annotated[str, typer.Argument(help="grid spec YAML (base + axes + exclude)")],
    output: Annotated[str, typer.Option("--output", "-o", help="grid directory (results.sqlite + runs/)")],
    workers: Annotated[int | None, typer.Option(
        help="cells at once: local processes (default 1 = in this process); with --executor ray, at most this many "
             "Ray tasks at a time and a local Ray's CPUs (default: this machine's cores)")] = None,
    executor: Annotated[str, typer.Option(
        help="local (this machine's processes) or ray (one Ray task per cell: a local Ray, or the cluster at "
             "--address; needs the ray extra)")] = "local",
    address: Annotated[str | None, typer.Option(
        help="with --executor ray: the cluster, e.g. ray://HOST:10001 (default: $RAY_ADDRESS, else a local Ray)")
                       ] = None,
) -> None:
    """Run every cell of a grid; finished cells are skipped, so re-running resumes a killed grid."""
    from transferkit.experiments.grid import load_grid, run_grid
    from transferkit.experiments.grid_ray import RayConfig, import_ray

    executors = ("local", "ray")
    if executor not in executors:
        raise UserError(f"--executor: unknown executor '{executor}'{closest(executor, executors)}; valid: local, ray")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if address is not None and executor != "ray":
        raise UserError("--address goes with --executor ray")
    ray = RayConfig(address=address, workers=workers) if executor == "ray" else None
    if ray is not None:
        import_ray()  # a missing extra fails before the grid is read
    summary = run_grid(load_grid(spec), output, workers=workers or 1, ray=ray)
    typer.echo(f"{summary.done} done, {summary.failed} failed, {summary.skipped} skipped (already done); "
               f"results in {output}")
    if ray is None and (workers or 1) == 1:
        typer.echo(f"frozen-encoder features: {summary.embedded} texts embedded, {summary.reused} served from the cache")
    for cell in summary.failures:
        axes = " ".join(f"{k}={v}" for k, v in cell.axes.items())
        typer.echo(f"failed {cell.cell_id} [{axes}]: {cell.error}")
    if summary.failures:
        sys.exit(1)


@app.command()
def results(
    directory: Annotated[str, typer.Argument(help="a grid directory written by `transferkit grid`")],
    format_: Annotated[str, typer.Option("--format", "-f", help="csv, json or md")] = "csv",
) -> None:
    """Export one row per grid cell (axis values, status, metrics) to stdout."""
    import csv

    from transferkit.experiments.grid_results import result_rows

    formats = ("csv", "json", "md")
    if format_ not in formats:
        raise UserError(f"--format: unknown format '{format_}'{closest(format_, formats)}; valid: csv, json, md")
    columns, rows = result_rows(directory)
    if format_ == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
    elif format_ == "md":
        from transferkit.reporting import markdown_table

        typer.echo(markdown_table(rows, columns))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@app.command()
def report(
    results_dir: Annotated[str, typer.Argument(help="a grid output directory (holds results.sqlite)")],
    output: Annotated[str, typer.Option("--output", "-o", help="report file: .html (self-contained) or .md")],
    metric: Annotated[str | None, typer.Option(
        help="metric compared and plotted, one of the task's report metrics (default: the task's primary, "
             "e.g. accuracy, entity f1, QA f1)")] = None,
    split: Annotated[str | None, typer.Option(
        help="split the figures come from: eval, test, test:NAME or a test-set name (default: the first test set "
             "when the runs have one, else eval)")] = None,
) -> None:
    """Render the results of a grid as an HTML or Markdown report with plots (every task's report metrics)."""
    from transferkit.reporting import render_report

    typer.echo(f"report written to {render_report(results_dir, output, metric, split)}")


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(usage errors, aborts) of the Click that typer parses with: typer >= 0.20 bundles its own copy
    (``typer._click``), whose exceptions are not ``click``'s, so both are caught."""
    usage: tuple[type, ...] = (click.exceptions.ClickException,)
    aborts: tuple[type, ...] = (click.exceptions.Abort, typer.Abort)
    try:
        from typer._click import exceptions as bundled
    except ImportError:  # an older typer on the installed click
        return usage, aborts
    return (*usage, bundled.ClickException), aborts  # its Abort is typer.Abort


def main() -> None:
    """Entry point: for user mistakes, one line (or the usage line and the reason) and exit code 2, never a
    traceback."""
    _quiet_libraries()
    usage_errors, aborts = _click_exceptions()
    try:
        app(standalone_mode=False)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except aborts:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except usage_errors as exc:
        exc.show()  # the usage line, then "Error: No such option: --epochs" (with a suggestion when one is close)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
