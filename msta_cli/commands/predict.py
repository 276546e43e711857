"""`msta predict INPUT... --labels FILE|DATASET [--model RUN|CHECKPOINT|EXPORT]`: classify videos."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from msta_cli.commands.errors import EXIT_FAILURE, exits_on_errors, stderr
from msta_cli.core.data.dataset import VideoFailure
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.files import write_text_atomic
from msta_cli.core.inference import reports
from msta_cli.core.inference.batch import Prediction, predict_videos
from msta_cli.core.inference.inputs import expand_inputs
from msta_cli.core.inference.labels import load_labels
from msta_cli.core.inference.predictor import ModelOptions, load_predictor
from msta_cli.core.inference.timeline import (
    Timeline,
    output_stems,
    parse_duration,
    plotting,
    timelines,
    write_timeline,
)
from msta_cli.core.inference.views import Views
from msta_cli.core.output_paths import check_output, os_error_message

Result = TypeVar("Result")
WINDOW, STRIDE, TIMELINE_DIR = "2s", "1s", "timeline"


@exits_on_errors
def predict(
    inputs: list[str] = typer.Argument(..., help="Video files, folders (searched recursively) or glob patterns."),
    labels: Optional[str] = typer.Option(
        None, "--labels", help="Class names: a text file (one per line, # comments), a labels.csv, or a prepared "
        "dataset (data/NAME or its folder). Optional for exports made with --labels."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", help="A run folder, an adapter checkpoint, or an export (.safetensors merged, .onnx, .pt). "
        "Default: zero-shot CLIP."
    ),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="Zero-shot backbone: open_clip name or local-dir:PATH (default: ViT-B-16-quickgelu)."),
    pretrained: Optional[str] = typer.Option(None, "--pretrained", help="Backbone weights: open_clip tag or local file (default: openai; a checkpoint's own)."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="Labels shown per video (or per window)."),
    output_format: str = typer.Option("table", "--format", help="table, csv or json."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the csv/json here instead of stdout (format from the suffix if --format is not given; missing folders are created)."),
    timeline: bool = typer.Option(False, "--timeline", help="Score sliding windows: per-window CSV and a PNG per video, segments on stdout."),
    window: Optional[str] = typer.Option(None, "--window", help=f"Timeline window length (2s, 1.5, 500ms; default {WINDOW}); needs --timeline."),
    stride: Optional[str] = typer.Option(None, "--stride", help=f"Timeline step between windows (default {STRIDE}); needs --timeline."),
    timeline_dir: Optional[Path] = typer.Option(
        None, "--timeline-dir", help=f"Folder for the timeline CSVs and plots (default {TIMELINE_DIR}/, created if missing); needs --timeline."
    ),
    views: str = typer.Option("1x1", "--views", help="Test views CLIPSxCROPS, e.g. 4x3; probabilities are averaged over views."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Frames per clip (default: the run's, an export's, else 8)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Videos (or timeline windows) per forward pass."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Decoding processes (default: up to 4 when there are several inputs)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or bf16 (PyTorch models)."),
) -> None:
    """Classify videos with a trained, exported or zero-shot model."""
    _check_timeline_options(timeline, {"--window": window, "--stride": stride, "--timeline-dir": timeline_dir})
    timeline_dir = timeline_dir or Path(TIMELINE_DIR)
    if output is not None:  # first: a folder given as --output is named as such, not as a format question
        check_output(output, "--output")
    output_format = _output_format(output_format, output)
    test_views = Views.parse(views)
    seconds = None
    if timeline:
        seconds = (parse_duration(window or WINDOW, "--window"), parse_duration(stride or STRIDE, "--stride"))
        plotting()
        check_output(timeline_dir, "--timeline-dir", folder=True)
    label_set = load_labels(labels) if labels is not None else None
    expanded = expand_inputs(inputs)
    paths = [item for item in expanded if isinstance(item, Path)]
    failures = [item for item in expanded if isinstance(item, VideoFailure)]
    attempted = len(expanded)
    if not paths:
        if output_format != "table":  # a script reading the JSON or CSV still gets one, with the failures
            empty = _timelines_output([], {}, failures, output_format) if seconds else _predictions_output([], failures, output_format)
            _emit(empty, output)
        _report_failures(failures, attempted)
        raise InputError("no video to predict: every input failed (see above)")
    options = ModelOptions(backbone, pretrained, device, precision, frames)
    predictor = load_predictor(model, label_set, options)
    stderr.print(
        f"[dim]{escape(predictor.description)}: {len(predictor.labels)} labels, {predictor.sampling.describe()}, "
        f"views {test_views.clips}x{test_views.crops}, {len(paths)} video(s)"
        + (f" and {len(failures)} input(s) that name none" if failures else "") + "[/]",
        highlight=False, soft_wrap=True,
    )
    if seconds is None:
        if workers is None:  # worker processes pay off only with several videos to decode
            workers = min(4, os.cpu_count() or 1) if len(paths) > 1 else 0
        results = _with_progress(predict_videos(predictor, paths, test_views, top_k, batch_size, workers), len(paths))
        good = [result for result in results if isinstance(result, Prediction)]
        failures = _in_argument_order(failures + _failed(results), expanded)
        rendered = _predictions_output(good, failures, output_format)
    else:
        results = _with_progress(timelines(predictor, paths, *seconds, test_views, batch_size), len(paths))
        good = [result for result in results if isinstance(result, Timeline)]
        failures = _in_argument_order(failures + _failed(results), expanded)
        rendered = _timelines_output(good, _write_timelines(good, timeline_dir, top_k), failures, output_format)
    _emit(rendered, output)
    _report_failures(failures, attempted)
    if not good:
        raise InputError("no input could be read as a video (see above)")
    if failures:
        raise typer.Exit(EXIT_FAILURE)


def _check_timeline_options(timeline: bool, options: dict[str, object]) -> None:
    """Window options without --timeline would be ignored; refuse them so the user knows."""
    given = [flag for flag, value in options.items() if value is not None]
    if given and not timeline:
        raise InputError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --timeline (add it to score sliding windows)")


def _output_format(output_format: str, output: Path | None) -> str:
    if output_format not in reports.FORMATS:
        raise InputError(f"--format {output_format!r}: choose one of {', '.join(reports.FORMATS)}")
    if output is None or output_format != "table":
        return output_format
    inferred = output.suffix.lower().lstrip(".")
    if inferred not in ("csv", "json"):
        raise InputError(f"--output {output}: give --format csv or json (or a .csv/.json file name)")
    return inferred


def _with_progress(results: Iterable[Result], total: int) -> list[Result]:
    """Consume the core's results with a progress bar on a terminal when there are several."""
    columns = (TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True, disable=total < 2 or not stderr.is_terminal) as bar:
        task = bar.add_task("predict", total=total)
        collected = []
        for result in results:
            collected.append(result)
            bar.advance(task)
    return collected


def _failed(results: list) -> list[VideoFailure]:
    return [result for result in results if isinstance(result, VideoFailure)]


def _in_argument_order(failures: list[VideoFailure], expanded: list[Path | VideoFailure]) -> list[VideoFailure]:
    """Arguments that name nothing and videos that fail to decode, in the order they were given."""
    position = {str(item) if isinstance(item, Path) else item.path: index for index, item in enumerate(expanded)}
    return sorted(failures, key=lambda failure: position.get(failure.path, len(position)))


def _predictions_output(predictions: list[Prediction], failures: list[VideoFailure], output_format: str) -> str | list[Table]:
    if output_format == "csv":
        return reports.predictions_csv(predictions)
    if output_format == "json":
        return reports.predictions_json(predictions, failures)
    tables = []
    for prediction in predictions:
        table = _table(escape(prediction.path), ("#", "label", "probability"))
        for rank, (label, probability) in enumerate(prediction.top, start=1):
            table.add_row(str(rank), escape(label), f"{probability:.4f}")
        tables.append(table)
    return tables


def _write_timelines(found: list[Timeline], folder: Path, top_k: int) -> dict[str, list[str]]:
    stems = output_stems([timeline.path for timeline in found])
    try:
        return {t.path: [str(p) for p in write_timeline(t, folder, stem, top_k)] for t, stem in zip(found, stems)}
    except OSError as error:
        raise MstaError(f"--timeline-dir {folder}: cannot write the timelines: {os_error_message(error)}") from None


def _timelines_output(
    found: list[Timeline], files: dict[str, list[str]], failures: list[VideoFailure], output_format: str
) -> str | list[Table]:
    if output_format == "csv":
        return reports.segments_csv(found)
    if output_format == "json":
        return reports.segments_json(found, files, failures)
    tables = []
    for timeline in found:
        title = f"{escape(timeline.path)} ({timeline.duration:.1f} s, {len(timeline.windows)} windows)"
        table = _table(title, ("start", "end", "dominant action", "mean probability"))
        table.caption = "windows: {}  plot: {}".format(*map(escape, files[timeline.path]))
        for segment in timeline.segments:
            table.add_row(f"{segment.start:.2f}", f"{segment.end:.2f}", escape(segment.label), f"{segment.score:.4f}")
        tables.append(table)
    return tables


def _table(title: str, columns: tuple[str, ...]) -> Table:
    """Numbers right-aligned, labels left."""
    table = Table(title=title, title_justify="left", caption_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if "label" in column or "action" in column else "right")
    return table


def _emit(rendered: str | list[Table], output: Path | None) -> None:
    if isinstance(rendered, list):
        console = Console()
        for table in rendered:
            console.print(table)
    elif output is not None:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(output, rendered)
        except OSError as error:
            raise MstaError(f"--output {output}: cannot write: {os_error_message(error)}") from None
        stderr.print(f"wrote {escape(str(output))}", highlight=False, soft_wrap=True)
    else:
        typer.echo(rendered, nl=False)


def _report_failures(failures: list[VideoFailure], total: int) -> None:
    for failure in failures:
        stderr.print(f"[bold red]failed:[/] {escape(failure.path)}: {escape(failure.reason)}", highlight=False, soft_wrap=True)
    if failures:
        stderr.print(f"{len(failures)} of {total} input(s) failed", highlight=False, soft_wrap=True)
