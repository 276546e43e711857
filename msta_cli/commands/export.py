"""`msta export RUN_DIR|CHECKPOINT --format FORMAT --out PATH`: files for deployment, verified."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from msta_cli.commands.errors import exits_on_errors
from msta_cli.core.errors import MstaError
from msta_cli.core.inference.export import DEFAULT_TOLERANCE, FORMATS, ExportReport, export_checkpoint
from msta_cli.core.inference.labels import load_labels
from msta_cli.core.output_paths import check_output, os_error_message


@exits_on_errors
def export(
    source: Path = typer.Argument(..., help="A training run folder or an adapter checkpoint folder."),
    export_format: str = typer.Option(..., "--format", help=f"{', '.join(FORMATS)}."),
    out: Path = typer.Option(
        ..., "--out", help="A folder for adapter; a .safetensors, .onnx or .pt file for the others. Missing folders are created."
    ),
    labels: Optional[str] = typer.Option(
        None, "--labels", help="Bake this label set's class embeddings in (merged, onnx, torchscript): text file, labels.csv or dataset."
    ),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Frames per clip (default: the run's, else 8); fixed in onnx/torchscript."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Fix the clips per call of an onnx/torchscript export (default: onnx any, torchscript 1)."),
    tolerance: float = typer.Option(DEFAULT_TOLERANCE, "--tolerance", min=0.0, help="Largest allowed difference from PyTorch (embeddings; logits get it times the logit scale)."),
    pretrained: Optional[str] = typer.Option(None, "--pretrained", help="Backbone weights file, when the checkpoint's lives elsewhere on this machine."),
) -> None:
    """Export adapters, a self-contained merged model, or an ONNX/TorchScript video encoder."""
    check_output(out, "--out", folder=export_format == "adapter")
    label_set = load_labels(labels) if labels is not None else None
    try:
        report = export_checkpoint(source, export_format, out, label_set, frames, batch_size, tolerance, pretrained)
    except OSError as error:
        raise MstaError(f"export to {out} failed: {os_error_message(error)}") from None
    Console().print(_report_table(report))


def _report_table(report: ExportReport) -> Table:
    table = Table(title=f"{report.format} export verified against PyTorch on a random clip", title_justify="left")
    table.add_column("output")
    table.add_column("max |difference|", justify="right")
    table.add_column("tolerance", justify="right")
    for check in sorted(report.checks, key=lambda check: check.output):
        table.add_row(check.output, f"{check.difference:.3g}", f"{check.tolerance:.3g}")
    sizes = ", ".join(f"{escape(str(path))} ({_size(path.stat().st_size)})" for path in report.paths)
    table.caption = f"wrote {sizes}"
    table.caption_justify = "left"
    return table


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"
