"""Tables, plots and reports built from stored results (never from torch)."""

from transferkit.reporting.tables import format_value, markdown_table, print_table

__all__ = ["format_value", "markdown_table", "print_table"]
