"""The `msta` command line: registers the commands, nothing else."""

import sys

import typer

from msta_cli.commands import evaluate, export, predict, prepare, pretrain, train
from msta_cli.commands.errors import EXIT_BAD_INPUT, stderr

app = typer.Typer(
    name="msta",
    help="Adapt video-language CLIP models to action recognition with MSTA adapters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(name="prepare")(prepare.prepare)
app.command(name="train")(train.train)
app.command(name="evaluate")(evaluate.evaluate)
app.command(name="predict")(predict.predict)
app.command(name="export")(export.export)
app.command(name="pretrain-tiny")(pretrain.pretrain_tiny)


@app.callback()
def _group() -> None:
    """Adapt video-language CLIP models to action recognition with MSTA adapters."""


def main() -> None:
    refuse_empty_arguments(sys.argv[1:])
    app()


def refuse_empty_arguments(arguments: list[str]) -> None:
    """An empty argument is nearly always an unset shell variable ("$OUT", or --out="$OUT");
    Typer would read it as a path to the current folder and write there, so no msta argument,
    nor an option's value after `=`, may be empty."""
    empty = [
        str(number) for number, argument in enumerate(arguments, start=1)
        if argument == "" or (argument.startswith("--") and argument.endswith("=") and argument.count("=") == 1)
    ]
    if empty:
        stderr.print(
            f"[bold red]error:[/] argument {', '.join(empty)} of msta is empty (an unset shell variable?); "
            "give a value, or '.' for the current folder",
            highlight=False, soft_wrap=True,
        )
        raise SystemExit(EXIT_BAD_INPUT)
