import io

import pandas as pd
from rich.console import Console

from msta_cli.commands.tables import print_whole, rich_table


def test_a_wide_results_table_prints_whole_on_an_80_column_console():
    frame = pd.DataFrame([{f"column_{i}": 12.345 + i for i in range(12)}])
    output = io.StringIO()
    console = Console(file=output, width=80)  # what rich assumes when output is piped
    print_whole(console, rich_table(frame, "results"))
    text = output.getvalue()
    assert all(f"{12.345 + i:.2f}" in text for i in range(12)) and "…" not in text
    assert console.width == 80
