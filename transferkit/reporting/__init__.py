"""Tables, plots and reports built from stored results (never from torch)."""

from transferkit.reporting.continual_panel import continual_panel, continual_plot
from transferkit.reporting.plots import (
    best_cell,
    confusion_matrix_plot,
    cost_quality_plot,
    data_efficiency_curve,
    learning_curves,
)
from transferkit.reporting.report import render_report
from transferkit.reporting.report_split import (
    available_splits,
    choose_split,
    reported_split,
    split_label,
    split_metrics,
    stored_test_sets,
)
from transferkit.reporting.stats import paired_comparison, sign_flip_p_value, summarize, t_interval
from transferkit.reporting.tables import format_value, markdown_table, print_table
from transferkit.reporting.task_metrics import TaskInfo, choose_metric, metric_text, read_task

__all__ = [
    "TaskInfo",
    "available_splits",
    "best_cell",
    "choose_metric",
    "choose_split",
    "continual_panel",
    "continual_plot",
    "confusion_matrix_plot",
    "cost_quality_plot",
    "data_efficiency_curve",
    "format_value",
    "learning_curves",
    "markdown_table",
    "metric_text",
    "paired_comparison",
    "print_table",
    "read_task",
    "render_report",
    "reported_split",
    "sign_flip_p_value",
    "split_label",
    "split_metrics",
    "summarize",
    "t_interval",
    "stored_test_sets",
]
