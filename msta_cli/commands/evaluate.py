"""`msta evaluate [RUN_DIR|CHECKPOINT]`: multi-view testing and protocol tables."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from msta_cli.commands import launcher
from msta_cli.commands.errors import exits_on_errors, stderr
from msta_cli.commands.progress import TrainingReporter
from msta_cli.commands.tables import print_whole, rich_table
from msta_cli.core.checkpoint import CONFIG_FILE
from msta_cli.core.config import Config, load_config
from msta_cli.core.errors import InputError
from msta_cli.core.config_checks import views_error
from msta_cli.core.evaluation.evaluator import check_eval_sets
from msta_cli.core.output_paths import check_output
from msta_cli.core.evaluation.runner import (
    check_data_roots,
    checkpoint_overrides,
    default_output,
    evaluate_checkpoints,
    require_scored,
    run_checkpoints,
)
from msta_cli.core.training.distributed import broadcast_object, init_distributed, resolve_device, shutdown
from msta_cli.core.training.run_directory import CONFIG

console = Console()


@exits_on_errors
def evaluate(
    target: Optional[Path] = typer.Argument(None, help="A run directory, an adapter checkpoint folder, or nothing for zero-shot CLIP."),
    recipe: Optional[Path] = typer.Option(
        None, "--recipe", help="Recipe naming the data and test sets (default: the run's config.yaml, also for a checkpoint in "
        "RUN/checkpoints/). Its model.backbone and model.pretrained must be the checkpoint's; the checkpoint's adapter.* and text.templates are used."
    ),
    splits: Optional[list[str]] = typer.Option(None, "--split", help="Evaluate only these test sets (eval.sets names); repeatable."),
    views: Optional[str] = typer.Option(
        None, "--views", help="CLIPSxCROPS, e.g. 10x3, or auto (the benchmark's own: HMDB51 10x3, UCF101 5x3, Kinetics 4x3, SSv2 2x3), "
        "for every test set, also those with views of their own (default: each set's views, else eval.views)."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", help="Folder for results (default: RUN/evaluate-<time> for a run or a checkpoint in RUN/checkpoints/, "
        "FOLDER-evaluate-<time> beside any other checkpoint folder, runs/evaluate-<time> for zero-shot)."
    ),
    settings: Optional[list[str]] = typer.Option(None, "--set", help="Recipe override key=value; repeatable."),
    nproc: int = typer.Option(0, "--nproc", help="Start N processes with torchrun (one per GPU), each scoring its share; 0 = this process only."),
) -> None:
    """Evaluate adapters (or the frozen backbone) with deterministic multi-view testing."""
    if nproc < 0:
        raise InputError(f"--nproc {nproc}: give the number of processes to start (1 or more), or leave it out")
    config, checkpoints = _resolve(target, recipe, settings or [])
    if splits:
        known = [s.name for s in config.eval.sets]
        unknown = [name for name in splits if name not in known]
        if unknown:
            raise InputError(f"--split {', '.join(unknown)}: not a test set of this recipe; known: {', '.join(known)}")
        config.eval.sets = [s for s in config.eval.sets if s.name in splits]
    if views:
        message = views_error("--views", views)
        if message:
            raise InputError(message)
        config.eval.views = views
        for eval_set in config.eval.sets:
            eval_set.views = views
    check_data_roots(config)
    check_eval_sets(config)
    overridden = checkpoint_overrides(config, checkpoints)
    if overridden:
        stderr.print(f"[dim]using the checkpoint's {', '.join(overridden)}, not the recipe's[/]", highlight=False, soft_wrap=True)
    device = resolve_device(config.run.device)
    if nproc:
        # the output folder is fixed here, so every process writes to this one
        output = output or default_output(target, time.strftime("%Y%m%d-%H%M%S"))
        check_output(output, "--output", folder=True)
        arguments = [*([str(target)] if target else []), *(["--recipe", str(recipe)] if recipe else []),
                     *(f"--split={name}" for name in splits or []), *([f"--views={views}"] if views else []),
                     *(f"--set={setting}" for setting in settings or []), f"--output={output}"]
        raise typer.Exit(launcher.launch(nproc, ["evaluate", *arguments]))
    world = init_distributed(device)
    try:
        default = default_output(target, time.strftime("%Y%m%d-%H%M%S"))
        output = Path(broadcast_object(str(output or default), world))
        check_output(output, "--output", folder=True)  # before minutes of scoring, not after
        reporter = TrainingReporter() if world.is_main else (lambda event: None)
        results, table = evaluate_checkpoints(config, checkpoints, output, world, device, reporter)
        if world.is_main:
            print_whole(console, rich_table(table, f"{config.protocol.kind} evaluation ({output})"))
            require_scored(results, config, output)
    finally:
        shutdown(world)


def _resolve(target: Path | None, recipe: Path | None, settings: list[str]) -> tuple[Config, list[tuple[str, Path]]]:
    if target is not None and not target.exists():
        raise InputError(f"{target}: not found")
    if target is not None and not target.is_dir():
        raise InputError(
            f"{target}: a file; msta evaluate takes a run directory or an adapter checkpoint folder (a run's "
            "checkpoints/last, or an `msta export --format adapter` folder). Merged, ONNX and TorchScript exports "
            "are for msta predict; evaluate the run they were exported from"
        )
    if target is not None and (target / CONFIG).is_file():
        return load_config(recipe or target / CONFIG, settings), run_checkpoints(target)
    if recipe is None and target is not None:
        recipe = _run_config_of(target)
    if recipe is None:
        raise InputError("--recipe is needed to know the data and test sets (a run directory carries its own)")
    config = load_config(recipe, settings)
    if target is None:
        return config, []
    if not (target / CONFIG_FILE).is_file():
        raise InputError(f"{target}: neither a run directory ({CONFIG}) nor an adapter checkpoint ({CONFIG_FILE})")
    return config, [("", target)]


def _run_config_of(checkpoint: Path) -> Path | None:
    """RUN/config.yaml for a checkpoint in RUN/checkpoints/, the recipe `msta predict` uses for it too."""
    folder = checkpoint.resolve()
    config = folder.parent.parent / CONFIG
    return config if folder.parent.name == "checkpoints" and config.is_file() else None
