"""`msta train RECIPE [key=value ...]`: train (or --dry-run) a recipe's protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from msta_cli.commands import launcher
from msta_cli.commands.errors import EXIT_BAD_INPUT, EXIT_FAILURE, exits_on_errors, stderr
from msta_cli.commands.progress import TrainingReporter, input_line
from msta_cli.commands.tables import print_whole, rich_table
from msta_cli.core.config import Config, config_to_dict, dump_config, load_config
from msta_cli.core.config_checks import check_input_size
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.evaluation.evaluator import set_views
from msta_cli.core.evaluation.runner import require_scored
from msta_cli.core.model import create_model, gflops_per_view, parameter_summary
from msta_cli.core.protocols import check_recipe, plan_runs, prepare_protocol, resume_command, run_protocol
from msta_cli.core.training.distributed import Distributed, barrier, init_distributed, resolve_device, shutdown
from msta_cli.core.training.run_directory import new_run_directory, resume_config

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
    overrides = overrides or []
    if resume is not None and recipe is not None:
        if "=" not in str(recipe):
            raise InputError("--resume takes the recipe from RUN_DIR/config.yaml; drop the recipe argument")
        recipe, overrides = None, [str(recipe), *overrides]  # the recipe slot caught the first override
    if nproc < 0:
        raise InputError(f"--nproc {nproc}: give the number of processes to start (1 or more), or leave it out")
    if json_output and not dry_run:
        raise InputError("--json prints the --dry-run result; add --dry-run, or drop --json")
    config = _load(recipe, overrides, resume)
    if dry_run:
        _dry_run(config, json_output, max(nproc, 1))
        return
    if nproc:
        _launch_torchrun(config, nproc, recipe, overrides, resume)
        return
    device = resolve_device(config.run.device)
    world = init_distributed(device)
    try:
        try:
            run_dir, runs = prepare_protocol(config, resume, world)
        except InputError as error:
            _stop_every_process(error, world)
        reporter = TrainingReporter() if world.is_main else (lambda event: None)
        if world.is_main:
            console.print(f"run directory: {run_dir}")
        results, table = run_protocol(config, run_dir, runs, world, device, resume is not None, reporter)
        if world.is_main:
            reporter.close()
            print_whole(console, rich_table(table, f"{config.protocol.kind} results ({run_dir})"))
            require_scored(results, config, run_dir)
    except MstaError as error:
        if world.is_main:
            raise
        # What a run raises comes after a collective (a gather, a barrier), so rank 0 raises it
        # too, and prints it alone.
        raise typer.Exit(EXIT_BAD_INPUT if isinstance(error, InputError) else EXIT_FAILURE) from None
    finally:
        shutdown(world)


def _stop_every_process(error: InputError, world: Distributed) -> NoReturn:
    """An input error every process raised (prepare_protocol agrees on them): rank 0 prints it,
    and the others wait until it has, since torchrun stops the rest when one process exits."""
    if world.is_main:
        stderr.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    barrier(world)
    raise typer.Exit(EXIT_BAD_INPUT)


def _load(recipe: Path | None, overrides: list[str], resume: Path | None) -> Config:
    if resume is not None:
        return resume_config(resume, overrides)
    if recipe is None:
        raise InputError("give a recipe (e.g. recipes/base2novel.yaml) or --resume RUN_DIR")
    return load_config(recipe, overrides)


def _launch_torchrun(config: Config, nproc: int, recipe: Path | None, overrides: list[str], resume: Path | None) -> None:
    """Check the input here, then re-run this command under PyTorch's own launcher, with the run
    directory fixed up front; exits with the processes' exit code, without the launcher's traceback."""
    run_dir = resume or new_run_directory(config)
    plan_runs(config, run_dir, Distributed(world_size=nproc), resume is not None)
    # every process must write to the one folder named here: it replaces an output_dir given
    own = [override for override in overrides if override.partition("=")[0] != "output_dir"]
    arguments = ["--resume", str(resume), *overrides] if resume else [str(recipe), *own, f"output_dir={run_dir}"]
    code = launcher.launch(nproc, ["train", *arguments])
    if code not in (0, EXIT_BAD_INPUT):  # a crash, a kill or Ctrl-C: the processes may not have said how to go on
        stderr.print(
            f"the run keeps what its last checkpoint saved; continue it with: {resume_command(run_dir, Distributed(world_size=nproc))}",
            highlight=False, soft_wrap=True,
        )
    raise typer.Exit(code)


def _dry_run(config: Config, json_output: bool, processes: int) -> None:
    """Build the model and run the input checks a real run makes before reading data (device,
    batch split for the processes --nproc names, test views, input size), so that a dry run that
    passes can start."""
    resolve_device(config.run.device)
    check_recipe(config, Distributed(world_size=processes))
    for eval_set in config.eval.sets:
        set_views(config, eval_set)
    model = create_model(config)
    check_input_size(config, model.backbone.preprocessing.size)
    parameters = parameter_summary(model)
    gflops = round(gflops_per_view(model.eval(), config.data.num_frames, config.data.input_size), 3)
    if json_output:
        payload = {
            "config": config_to_dict(config),
            "parameters": parameters,
            "gflops_per_view": gflops,
            "preprocessing": vars(model.backbone.preprocessing),
        }
        typer.echo(json.dumps(payload, default=list))
        return
    console.print(Syntax(dump_config(config), "yaml", theme="ansi_dark"))
    console.print(_parameter_table(parameters))
    console.print(
        f"GFLOPs per view ({config.data.num_frames} frames at {config.data.input_size}px, adapters included): {gflops}",
        highlight=False,
    )
    console.print(input_line(model.backbone.preprocessing))


def _parameter_table(parameters: dict) -> Table:
    """Each part as a share of the frozen backbone (what the paper reports) and of everything."""
    table = Table(title="Parameters")
    table.add_column("part")
    table.add_column("count", justify="right")
    table.add_column("share of backbone", justify="right")
    table.add_column("share of total", justify="right")
    total, backbone = parameters["total"], parameters["backbone"]

    def row(part: str, count: int, style: str | None = None) -> None:
        table.add_row(part, f"{count:,}", f"{100 * count / backbone:.3f}%", f"{100 * count / total:.3f}%", style=style)

    for part, count in parameters["per_part"].items():
        row(f"adapter {part}", count)
    row("trainable", parameters["trainable"], style="bold")
    row("frozen backbone", backbone)
    row("total", total, style="bold")
    return table
