"""`msta prepare DATASET SOURCE`: checked split lists from a public dataset or a folder of videos."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from msta_cli.commands.errors import exits_on_errors
from msta_cli.core.errors import InputError
from msta_cli.core.prepare import DATASETS, PrepareOptions, PrepareReport
from msta_cli.core.prepare import prepare as run_prepare
from msta_cli.core.prepare.download import parse_pins, parse_urls
from msta_cli.core.synthetic.dataset import SyntheticOptions, write_synthetic

# synthetic: the generated action world (docs/synthetic.md); SOURCE is the folder it is written to.
SYNTHETIC = "synthetic"
Dataset = Enum("Dataset", {name: name for name in [*DATASETS, SYNTHETIC]}, type=str)  # type: ignore[misc]
SHOWN_PROBLEMS = 10
# The options only some datasets use, and those datasets: given for another, an option would do nothing unnoticed.
# The core narrows --download, --sha256, --url and --vifi-clip-splits further (the datasets with archives, with ViFi lists).
PREPARED = tuple(DATASETS)
USED_BY = {
    "download": PREPARED,
    "sha256": PREPARED,
    "url": PREPARED,
    "vifi_clip_splits": PREPARED,
    "k400_labels": ("kinetics600",),
    "test_fraction": ("folder",),
    "check": PREPARED,
    "train_per_class": (SYNTHETIC,),
    "test_per_class": (SYNTHETIC,),
}


@exits_on_errors
def prepare(
    ctx: typer.Context,
    dataset: Dataset = typer.Argument(..., help="Which layout SOURCE has."),
    source: Path = typer.Argument(..., help="The dataset as published: extracted folders, or its official archives (synthetic: the folder to write)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder.", show_default="data/<DATASET>"),
    download: bool = typer.Option(
        False, "--download", help="hmdb51/ucf101: fetch the official archives into SOURCE (resumable)."
    ),
    sha256: list[str] | None = typer.Option(
        None, "--sha256", help="Pin an archive's checksum, replacing msta's own: ARCHIVE=HEX (repeatable)."
    ),
    url: list[str] | None = typer.Option(
        None, "--url", help="With --download: fetch an archive from a mirror, still checked: ARCHIVE=URL (repeatable)."
    ),
    vifi_clip_splits: Path | None = typer.Option(
        None,
        "--vifi-clip-splits",
        help="A ViFi-CLIP checkout (labels/, datasets_splits/): use its lists instead of sampling.",
    ),
    k400_labels: Path | None = typer.Option(
        None,
        "--k400-labels",
        help="kinetics600: the K400 label list, to write the zero-shot splits of K600's new classes.",
    ),
    test_fraction: float = typer.Option(
        0.2,
        "--test-fraction",
        help="folder: share of each class's videos in test.csv, rounded half up (0: none, 1: all).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of every sampled list; the same seed gives the same files."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Videos checked in parallel.", show_default="all CPUs"
    ),
    check: bool = typer.Option(True, "--check/--no-check", help="Open every video and decode two frames."),
    train_per_class: int = typer.Option(
        SyntheticOptions.train_per_class, "--train-per-class", help="synthetic: training videos per class."
    ),
    test_per_class: int = typer.Option(
        SyntheticOptions.test_per_class, "--test-per-class", help="synthetic: test videos per class."
    ),
) -> None:
    """Find, check and list a dataset's videos: labels.csv, split CSVs, protocol lists, problems.csv, dataset.yaml."""
    name = dataset.value
    _reject_unused_options(ctx, name)
    if name == SYNTHETIC:
        if out is not None:
            raise InputError("msta prepare synthetic OUT writes the world to OUT; --out is not used")
        world = SyntheticOptions(train_per_class, test_per_class, seed=seed, workers=workers or os.cpu_count() or 1)
        with _ProgressBars(Console(stderr=True)) as bars:
            manifest = write_synthetic(source, world, bars.update)
        Console().print(f"wrote {escape(str(source))}: {manifest['num_classes']} classes, "
                        f"{manifest['check']['ok']:,} checked videos, lists {', '.join(manifest['lists'])}", highlight=False)
        return
    options = PrepareOptions(
        dataset=name,
        source=source,
        out=out or Path("data") / name,
        check=check,
        workers=workers or os.cpu_count() or 1,
        seed=seed,
        test_fraction=test_fraction,
        vifi_dir=vifi_clip_splits,
        k400_labels=k400_labels,
        download=download,
        sha256=parse_pins(sha256 or [], DATASETS[name].archives),
        urls=parse_urls(url or [], DATASETS[name].archives),
    )
    console = Console()
    with _ProgressBars(Console(stderr=True)) as bars:
        report = run_prepare(options, bars.update)
    _print_report(console, name, report)


def _reject_unused_options(ctx: typer.Context, dataset: str) -> None:
    """An option given for a dataset that does not use it is a mistake to point out, not to ignore."""
    params = {param.name: param for param in ctx.command.params}
    for name, used_by in USED_BY.items():
        # By name: Typer bundles its own copy of click, whose ParameterSource is not click.core's.
        if dataset not in used_by and ctx.get_parameter_source(name).name != "DEFAULT":
            flag = "/".join(params[name].opts + params[name].secondary_opts)
            raise InputError(f"{flag} is for {', '.join(used_by)} only; {dataset} does not use it")


class _ProgressBars:
    """Renders the core's progress(task, completed, total) calls as rich progress bars."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _ProgressBars:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def update(self, task: str, completed: int, total: int | None) -> None:
        if task not in self.tasks:
            self.tasks[task] = self.progress.add_task(task, total=total, amount="")
        if task.startswith(("download", "verify")):  # bytes, in MB with the unit, also while the total is unknown
            amount = f"{completed / 1e6:,.1f}" + (f"/{total / 1e6:,.1f}" if total is not None else "") + " MB"
        else:
            amount = f"{completed:,}" + (f"/{total:,}" if total is not None else "")
        self.progress.update(self.tasks[task], completed=completed, total=total, amount=amount)


def _print_report(console: Console, dataset: str, report: PrepareReport) -> None:
    table = Table(title=f"msta prepare {dataset}: {report.num_classes} classes")
    table.add_column("list")
    table.add_column("videos", justify="right")
    table.add_column("left out", justify="right")
    for name, size in report.lists.items():
        left_out = size.listed - size.written
        table.add_row(name, f"{size.written:,}", f"[red]{left_out:,}[/]" if left_out else "0")
    console.print(table)
    if report.problems:
        problems = Table(title=f"{len(report.problems):,} videos left out (all in problems.csv)")
        problems.add_column("path", overflow="fold")
        problems.add_column("reason", overflow="fold")
        for problem in report.problems[:SHOWN_PROBLEMS]:
            problems.add_row(escape(problem.path), escape(problem.reason))
        if len(report.problems) > SHOWN_PROBLEMS:
            problems.add_row(f"... {len(report.problems) - SHOWN_PROBLEMS:,} more", "")
        console.print(problems)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if report.imported:
        console.print(f"ViFi-CLIP lists imported: {', '.join(report.imported)}")
    checked = f"checked {report.checked:,} videos" if report.checked else "videos not checked (--no-check)"
    console.print(
        f"{checked}; wrote {escape(str(report.out))} (video root {escape(str(report.video_root))})", highlight=False
    )
