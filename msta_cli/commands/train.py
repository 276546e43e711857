"""`msta train RECIPE [key=value ...]`: resolve a recipe and build its model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from msta_cli.commands.errors import exits_on_errors
from msta_cli.core.config import config_to_dict, dump_config, load_config
from msta_cli.core.errors import InputError
from msta_cli.core.model import create_model, parameter_summary


@exits_on_errors
def train(
    recipe: Path = typer.Argument(..., help="YAML recipe, e.g. recipes/base2novel.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Dotted overrides: adapter.bottleneck=128 model.pretrained=none"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve the recipe and build the model; touch no data."),
    json_output: bool = typer.Option(False, "--json", help="With --dry-run: print one JSON object on stdout."),
) -> None:
    """Train MSTA adapters from a recipe. Today: --dry-run (resolved config + parameter table)."""
    config = load_config(recipe, overrides or [])
    if not dry_run:
        raise InputError("training runs are not available in this version yet; use --dry-run to check a recipe")
    model = create_model(config)
    parameters = parameter_summary(model)
    if json_output:
        payload = {
            "config": config_to_dict(config),
            "parameters": parameters,
            "preprocessing": vars(model.backbone.preprocessing),
        }
        typer.echo(json.dumps(payload, default=list))
        return
    console = Console()
    console.print(Syntax(dump_config(config), "yaml", theme="ansi_dark"))
    console.print(_parameter_table(parameters))
    preprocessing = model.backbone.preprocessing
    console.print(f"input {preprocessing.size}px, normalised with the backbone's mean {preprocessing.mean} std {preprocessing.std}")


def _parameter_table(parameters: dict) -> Table:
    table = Table(title="Parameters")
    table.add_column("part")
    table.add_column("count", justify="right")
    table.add_column("share of total", justify="right")
    total = parameters["total"]
    for part, count in parameters["per_part"].items():
        table.add_row(f"adapter {part}", f"{count:,}", f"{100 * count / total:.3f}%")
    table.add_row("trainable", f"{parameters['trainable']:,}", f"{parameters['trainable_percent']:.3f}%", style="bold")
    table.add_row("frozen backbone", f"{parameters['backbone']:,}", f"{100 * parameters['backbone'] / total:.3f}%")
    table.add_row("total", f"{total:,}", "100%", style="bold")
    return table
