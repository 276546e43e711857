"""Render pandas result tables with rich."""

from __future__ import annotations

import pandas as pd
from rich.table import Table


def rich_table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if pd.api.types.is_numeric_dtype(frame[column]) else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*("-" if pd.isna(value) else f"{value:.2f}" if isinstance(value, float) else str(value) for value in row))
    return table
