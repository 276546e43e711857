"""The `msta` command line: registers the commands, nothing else."""

import typer

from msta_cli.commands import evaluate, export, predict, prepare, pretrain, train

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
    app()
