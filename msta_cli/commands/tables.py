"""Render pandas result tables with rich."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table


def rich_table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if pd.api.types.is_numeric_dtype(frame[column]) else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*("-" if pd.isna(value) else f"{value:.2f}" if isinstance(value, float) else str(value) for value in row))
    return table


def print_whole(console: Console, table: Table) -> None:
    """Print a results table at its natural width: fitted to a narrow terminal, or to the 80
    columns rich assumes when output is piped, it cuts numbers to "10.…", and logs keep that.
    A table wider than the terminal wraps there instead."""
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    width = console.width  # print() never renders wider than the console: widen it for this table
    console.width = max(natural, width)
    try:
        console.print(table, crop=False)
    finally:
        console.width = width
