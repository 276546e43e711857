"""`msta train RECIPE [key=value ...]`: train (or --dry-run) a recipe's protocol."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from msta_cli.commands.errors import exits_on_errors
from msta_cli.commands.progress import TrainingReporter
from msta_cli.commands.tables import rich_table
from msta_cli.core.config import Config, config_to_dict, dump_config, load_config
from msta_cli.core.errors import InputError
from msta_cli.core.evaluation.runner import require_scored
from msta_cli.core.model import create_model, parameter_summary
from msta_cli.core.protocols import run_protocol
from msta_cli.core.training.distributed import broadcast_object, init_distributed, resolve_device, shutdown
from msta_cli.core.training.run_directory import CONFIG, new_run_directory

console = Console()


@exits_on_errors
def train(
    recipe: Optional[Path] = typer.Argument(None, help="YAML recipe, e.g. recipes/base2novel.yaml (omit with --resume)."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Dotted overrides: adapter.bottleneck=128 optim.epochs=10"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve the recipe and build the model; touch no data."),
    json_output: bool = typer.Option(False, "--json", help="With --dry-run: print one JSON object on stdout."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory exactly where it stopped."),
    nproc: int = typer.Option(0, "--nproc", help="Start N processes with torchrun (one per GPU); 0 = this process only."),
) -> None:
    """Train MSTA adapters: every run of the recipe's protocol, then evaluation and the result table."""
    config = _load(recipe, overrides or [], resume)
    if dry_run:
        _dry_run(config, json_output)
        return
    if nproc:
        _launch_torchrun(config, nproc, recipe, overrides or [], resume)
        return
    device = resolve_device(config.run.device)
    world = init_distributed(device)
    try:
        run_dir = resume or Path(broadcast_object(str(new_run_directory(config)) if world.is_main else None, world))
        reporter = TrainingReporter() if world.is_main else (lambda event: None)
        if world.is_main:
            console.print(f"run directory: {run_dir}")
        results, table = run_protocol(config, run_dir, world, device, resume=resume is not None, on_event=reporter)
        if world.is_main:
            reporter.close()
            console.print(rich_table(table, f"{config.protocol.kind} results ({run_dir})"))
            require_scored(results, config, run_dir)
    finally:
        shutdown(world)


def _load(recipe: Path | None, overrides: list[str], resume: Path | None) -> Config:
    if resume is None:
        if recipe is None:
            raise InputError("give a recipe (e.g. recipes/base2novel.yaml) or --resume RUN_DIR")
        return load_config(recipe, overrides)
    if recipe is not None:
        if "=" not in str(recipe):
            raise InputError("--resume takes the recipe from RUN_DIR/config.yaml; drop the recipe argument")
        overrides = [str(recipe), *overrides]  # the recipe slot caught the first override
    if not (resume / CONFIG).is_file():
        raise InputError(f"--resume {resume}: not a run directory (no {CONFIG})")
    return load_config(resume / CONFIG, overrides)


def _launch_torchrun(config: Config, nproc: int, recipe: Path | None, overrides: list[str], resume: Path | None) -> None:
    """Re-run this command under PyTorch's own launcher, with the run directory fixed up front."""
    arguments = ["--resume", str(resume)] if resume else [str(recipe), *overrides, f"output_dir={new_run_directory(config)}"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "msta_cli", "train", *arguments]
    console.print(" ".join(command), highlight=False)
    raise typer.Exit(subprocess.call(command))


def _dry_run(config: Config, json_output: bool) -> None:
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
