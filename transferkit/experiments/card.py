"""Model card (Mitchell et al. 2019, "Model Cards for Model Reporting"), as Markdown."""

from __future__ import annotations

from typing import Any

from transferkit.experiments.grid_results import task_info


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


TITLES = {"accuracy": "accuracy", "macro_f1": "macro F1", "roc_auc": "ROC-AUC", "f1": "F1", "exact_match": "exact match",
          "rougeL": "ROUGE-L", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2"}
"""How a metric is titled in the card (token classification's F1 is "entity F1")."""


def task_columns(task_name: str) -> list[tuple[str, str]]:
    """(metric, title) of the task's report metrics, its primary metric first."""
    metrics = task_info(task_name).metrics
    entity = task_name == "token_classification"
    return [(m, "entity F1" if entity and m == "f1" else TITLES.get(m, m)) for m in metrics]


def _metric_table(metrics: dict[str, Any], columns: list[tuple[str, str]]) -> list[str]:
    """Rows per split; the 95% CI is that of the first (primary) metric."""
    primary = columns[0][0]
    lines = ["| split | " + " | ".join(title for _, title in columns) + f" | {columns[0][1]} 95% CI |",
             "|---|" + "---|" * (len(columns) + 1)]
    for split in ("eval", "test"):
        if split in metrics:
            m = metrics[split]
            ci = m.get("ci95", {}).get(primary)
            ci_text = f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "n/a"
            lines.append(f"| {split} | " + " | ".join(_fmt(m.get(key)) for key, _ in columns) + f" | {ci_text} |")
    return lines


def model_card(config: dict[str, Any], metrics: dict[str, Any], data_summary: dict[str, Any]) -> str:
    """A short, honest card: source model, strategy, data, metrics with CIs, limits."""
    strategy = config["strategy"]
    options = ", ".join(f"{k}={v}" for k, v in strategy.items() if k != "name") or "defaults"
    lines = [
        f"# Model card: {config['task']['name']} with `{strategy['name']}`",
        "",
        "## Source model",
        f"- reference: `{config['model']}`" if strategy["name"] != "tfidf" else "- none (TF-IDF baseline)",
        f"- strategy: `{strategy['name']}` ({options})",
        "",
        "## Data",
        f"- train: `{config['data']['train']}` — {data_summary['train_size']} examples after split/budget "
        f"(budget: {config['data']['budget']})",
        f"- eval: `{config['data']['eval'] or 'stratified split of train'}` — {data_summary['eval_size']} examples",
        f"- labels: {', '.join(data_summary['labels'])}",
        f"- training class counts: {data_summary['train_counts']}",
        "",
        "## Metrics",
        *_metric_table(metrics, task_columns(config["task"]["name"])),
    ]
    lines += [
        "",
        f"Cost: {metrics['train_seconds']:.1f} s training, {metrics['trainable_parameters']:,} trainable of "
        f"{metrics['total_parameters']:,} parameters, peak RSS {metrics['peak_rss_mb']:.0f} MB.",
        "",
        "## Limits",
        "- Measured on the evaluation data above only; expect lower accuracy on text from other domains.",
        "- Inputs longer than data.max_length tokens "
        f"({config['data']['max_length']}) are truncated.",
        "- The model inherits the biases of its source model and its training data.",
        "",
    ]
    return "\n".join(lines)
