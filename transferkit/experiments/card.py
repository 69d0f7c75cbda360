"""Model card (Mitchell et al. 2019, "Model Cards for Model Reporting"), as Markdown.

The metrics table has one row per split: eval (labelled "eval (selection split)" when
best-checkpoint restore chose the model on it, so its figures are optimistic) and one row per
test set ("test" for ``data.test: FILE``, "test:<name>" for ``data.test: {name: FILE}``).
A continual run (``metrics["continual"]``) adds a "Continual learning" section: its setting,
ACC / BWT / FWT in percent and the accuracy matrix R (one row per stage trained).
"""

from __future__ import annotations

from typing import Any

from transferkit.experiments.grid_results import task_info
from transferkit.reporting.continual_panel import continual_block, matrix_rows, summary_text
from transferkit.reporting.report_split import EVAL, split_ids, split_label, split_metrics
from transferkit.tasks import TASKS


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def task_columns(task_name: str) -> list[tuple[str, str]]:
    """(metric, title) of the task's report metrics, its primary metric first, titled as the task titles them."""
    titles = TASKS.get(task_name).metric_titles
    return [(m, titles.get(m, m)) for m in task_info(task_name).metrics]


def _metric_table(metrics: dict[str, Any], columns: list[tuple[str, str]]) -> list[str]:
    """One row per split, eval first, then the test sets; the 95% CI is that of the first (primary) metric."""
    primary = columns[0][0]
    lines = ["| split | " + " | ".join(title for _, title in columns) + f" | {columns[0][1]} 95% CI |",
             "|---|" + "---|" * (len(columns) + 1)]
    ids = split_ids(metrics)
    for split in [s for s in ids if s == EVAL] + [s for s in ids if s != EVAL]:
        m = split_metrics(metrics, split) or {}
        ci = (m.get("ci95") or {}).get(primary)
        ci_text = f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "n/a"
        label = split_label(split, metrics.get("selected_on"))
        lines.append(f"| {label} | " + " | ".join(_fmt(m.get(key)) for key, _ in columns) + f" | {ci_text} |")
    return lines


def _continual_lines(metrics: dict[str, Any]) -> list[str]:
    """The continual-learning section (none for a run that is not continual): setting, summaries and R."""
    block = continual_block(metrics)
    if block is None:
        return []
    header, rows = matrix_rows(block)
    return ["", "## Continual learning",
            f"- setting: {block.get('setting')}, {len(block['names'])} stages in order: {', '.join(block['names'])}",
            f"- {summary_text(block)} (Lopez-Paz & Ranzato 2017: ACC after the last stage; BWT < 0 means forgetting; "
            "FWT only in the domain setting)",
            "", "Accuracy (%) on each stage's test set (columns) after training each stage (rows):", "",
            "| " + " | ".join(header) + " |", "|---|" + "---|" * (len(header) - 1),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _test_lines(test: str | dict[str, str] | None) -> list[str]:
    """The data section's line(s) for ``data.test``: none, one file, or one line per named test set."""
    if not test:
        return []
    if isinstance(test, dict):
        return [f"- test `{name}`: `{path}` — evaluated once at the end" for name, path in test.items()]
    return [f"- test: `{test}` — evaluated once at the end"]


def _measured_on(metrics: dict[str, Any]) -> str:
    """The card's first limit: where the figures were measured, and whether they are optimistic."""
    if any(s != EVAL for s in split_ids(metrics)):
        return "- Measured on the test data above; expect lower scores on text from other domains."
    if metrics.get("selected_on") == EVAL:
        return ("- Measured on the eval split the checkpoint was selected on, so the figures are optimistic; "
                "set data.test for an unbiased estimate. Expect lower scores on text from other domains.")
    return "- Measured on the evaluation data above only; expect lower accuracy on text from other domains."


def model_card(config: dict[str, Any], metrics: dict[str, Any], data_summary: dict[str, Any],
               no_source_model: str | None = None) -> str:
    """A short, honest card: source model (``no_source_model`` says why there is none), strategy, data, metrics
    with CIs, limits."""
    method = config["strategy"]
    options = ", ".join(f"{k}={v}" for k, v in method.items() if k != "name") or "defaults"
    lines = [
        f"# Model card: {config['task']['name']} with `{method['name']}`",
        "",
        "## Source model",
        f"- none ({no_source_model})" if no_source_model else f"- reference: `{config['model']}`",
        f"- strategy: `{method['name']}` ({options})",
        "",
        "## Data",
        f"- train: `{config['data']['train']}` — {data_summary['train_size']} examples after split/budget "
        f"(budget: {config['data']['budget']})",
        f"- eval: `{config['data']['eval'] or 'stratified split of train'}` — {data_summary['eval_size']} examples",
        *_test_lines(config["data"].get("test")),
        f"- labels: {', '.join(data_summary['labels'])}",
        *[f"- {fact}: {value}" for fact, value in data_summary.items()
          if fact not in ("train_size", "eval_size", "labels", "test_sizes")],
        "",
        "## Metrics",
        *_metric_table(metrics, task_columns(config["task"]["name"])),
        *_continual_lines(metrics),
    ]
    lines += [
        "",
        f"Cost: {metrics['train_seconds']:.1f} s training, {metrics['trainable_parameters']:,} trainable of "
        f"{metrics['total_parameters']:,} parameters, peak RSS {metrics['peak_rss_mb']:.0f} MB{_machine(metrics)}.",
        "",
        "## Limits",
        _measured_on(metrics),
        "- Inputs longer than data.max_length tokens "
        f"({config['data']['max_length']}) are truncated.",
        "- The model inherits the biases of its source model and its training data.",
        "",
    ]
    return "\n".join(lines)


def _machine(metrics: dict[str, Any]) -> str:
    """``; on cpu (2 cpus: avx2 ...), precision bf16`` where the run recorded its machine (older runs did not)."""
    machine = metrics.get("machine")
    if not machine:
        return ""
    where = f"cpu ({machine['cpu']})" if machine["device"] == "cpu" else f"{machine['device']} (host {machine['cpu']})"
    return f"; on {where}, precision {machine['precision']}"
