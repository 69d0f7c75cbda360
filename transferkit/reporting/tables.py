"""Result tables for the terminal (rich) and Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return "" if value is None else str(value)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "", console: Console | None = None) -> None:
    table = Table(title=title or None, box=box.SIMPLE_HEAD)
    for column in columns:
        table.add_column(column, justify="left" if column in ("strategy", "model", "status") else "right")
    for row in rows:
        table.add_row(*(format_value(row.get(column)) for column in columns))
    console = console or Console()
    if not console.is_terminal:  # piped or captured: don't squeeze the table into 80 columns
        console.width = max(console.width, 120)
    console.print(table)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
