"""Long videos: scores over sliding windows, the dominant action per segment, and a plot.

Each window (`window` seconds every `stride` seconds; the last one aligned to the video's end
so the tail is scored) is one clip sampled like a test clip of a video that long, by the
model's sampling (TSN segments, or dense frames its stride apart). A window stands for the time
nearest its centre, so a segment, a run of windows with the same top label, ends half-way
between the centres of the last window of one label and the first of the next.

Times come from the frames' timestamps: a variable-frame-rate video (phones, screen
recordings) is read as a player shows it, at a constant rate (the stream's average) where each
tick shows the frame on screen then. Counting frames at the average rate instead would put a
window seconds away from what it scored.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterator, Sequence

import torch

from msta_cli.core.data.dataset import VideoFailure
from msta_cli.core.data.decoding import VideoError, open_video
from msta_cli.core.errors import InputError
from msta_cli.core.files import atomic_path, write_text_atomic
from msta_cli.core.inference.predictor import Predictor
from msta_cli.core.inference.reports import windows_csv
from msta_cli.core.inference.runtime import require
from msta_cli.core.inference.views import Views, test_transform, view_probabilities

PLOTTED_CLASSES = 8


@dataclass(frozen=True)
class Window:
    """Seconds [start, end) of the video and the class probabilities there."""

    start: float
    end: float
    probabilities: torch.Tensor

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2


@dataclass(frozen=True)
class Segment:
    """Seconds [start, end) where `label` is the top class; `score` is its mean probability."""

    start: float
    end: float
    label: str
    score: float
    first_window: int
    last_window: int


@dataclass
class Timeline:
    path: str
    labels: tuple[str, ...]
    duration: float
    windows: list[Window]
    segments: list[Segment]


def parse_duration(text: str, option: str) -> float:
    """`2s`, `1.5`, `500ms` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*", text)
    seconds = float(match[1]) / (1000 if match and match[2] == "ms" else 1) if match else 0.0
    if seconds <= 0:
        raise InputError(f"{option} {text!r}: expected a positive duration such as 2s, 1.5 or 500ms")
    return seconds


def window_starts(video_frames: int, window: int, stride: int) -> list[int]:
    """First frames of the windows; a video shorter than a window is one window."""
    last = max(video_frames - window, 0)
    starts = list(range(0, last + 1, stride))
    return starts if starts[-1] == last else [*starts, last]


def shown_frames(times: Sequence[float], fps: float) -> list[int]:
    """The frame on screen at each tick of an `fps` clock, read half-way through the tick so
    that timestamps rounded to a coarse time base (milliseconds in WebM) leave a constant-rate
    video's frames as they are: index k is then frame k."""
    ticks = int(times[-1] * fps + 0.5) + 1
    return [bisect.bisect_right(times, (tick + 0.5) / fps) - 1 for tick in range(ticks)]


def timelines(
    predictor: Predictor,
    paths: Sequence[str | Path],
    window: float,
    stride: float,
    views: Views = Views(1, 1),
    batch_size: int = 8,
    backend: str = "auto",
) -> Iterator[Timeline | VideoFailure]:
    """A timeline per path, in order; a video that cannot be read becomes a failure."""
    for path in paths:
        try:
            yield video_timeline(predictor, path, window, stride, views, batch_size, backend)
        except VideoError as error:
            yield VideoFailure(str(path), error.reason)


def video_timeline(
    predictor: Predictor,
    path: str | Path,
    window: float,
    stride: float,
    views: Views = Views(1, 1),
    batch_size: int = 8,
    backend: str = "auto",
) -> Timeline:
    """Score every window of one video, `batch_size` windows per forward pass."""
    transform = test_transform(predictor, views)
    windows: list[Window] = []
    with open_video(path, backend, max_short_side=predictor.preprocessing.size) as reader:
        shown = shown_frames(reader.frame_seconds(), reader.fps)
        length = max(1, round(window * reader.fps))
        span = min(length, len(shown))
        offsets = predictor.sampling.test_indices(span, views.clips)
        starts = window_starts(len(shown), length, max(1, round(stride * reader.fps)))
        for first in range(0, len(starts), batch_size):
            chunk = starts[first : first + batch_size]
            indices = [shown[start + offset] for start in chunk for clip in offsets for offset in clip]
            frames = reader.get_batch(indices)
            clips = frames.reshape(len(chunk), views.clips, predictor.sampling.num_frames, *frames.shape[1:])
            probabilities = view_probabilities(predictor, transform(clips))
            windows += [
                Window(start / reader.fps, (start + span) / reader.fps, p) for start, p in zip(chunk, probabilities)
            ]
        duration = len(shown) / reader.fps
    return Timeline(str(path), predictor.labels, duration, windows, segments_of(windows, predictor.labels, duration))


def segments_of(windows: list[Window], labels: tuple[str, ...], duration: float) -> list[Segment]:
    """Runs of windows with the same top class, split half-way between window centres."""
    tops = [int(window.probabilities.argmax()) for window in windows]
    segments: list[Segment] = []
    first = 0
    for index in range(1, len(windows) + 1):
        if index < len(windows) and tops[index] == tops[first]:
            continue
        start = 0.0 if first == 0 else (windows[first - 1].centre + windows[first].centre) / 2
        end = duration if index == len(windows) else (windows[index - 1].centre + windows[index].centre) / 2
        score = torch.stack([w.probabilities[tops[first]] for w in windows[first:index]]).mean()
        segments.append(Segment(start, end, labels[tops[first]], float(score), first, index - 1))
        first = index
    return segments


def write_timeline(timeline: Timeline, folder: str | Path, stem: str, k: int) -> tuple[Path, Path]:
    """`<stem>.windows.csv` and `<stem>.png` in `folder`; returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table, plot = folder / f"{stem}.windows.csv", folder / f"{stem}.png"
    write_text_atomic(table, windows_csv(timeline, k))
    plot_timeline(timeline, plot)
    return table, plot


def plotting() -> ModuleType:
    """matplotlib's figure module; commands call it first, to fail before any video is scored."""
    return require("matplotlib.figure", "plot", "the --timeline plot")


def plot_timeline(timeline: Timeline, path: str | Path) -> None:
    """Probabilities over time of the classes that lead somewhere (up to 8), with segment edges."""
    figure_module = plotting()
    probabilities = torch.stack([window.probabilities for window in timeline.windows])
    leading = probabilities.max(dim=0).values.argsort(descending=True).tolist()
    winners = list(dict.fromkeys(int(i) for i in probabilities.argmax(dim=1)))
    shown = list(dict.fromkeys(winners + leading))[:PLOTTED_CLASSES]
    figure = figure_module.Figure(figsize=(10, 4), layout="constrained")
    axes = figure.subplots()
    centres = [window.centre for window in timeline.windows]
    for index in shown:
        axes.plot(centres, probabilities[:, index].tolist(), marker=".", label=timeline.labels[index])
    for segment in timeline.segments[1:]:
        axes.axvline(segment.start, color="grey", linestyle="--", linewidth=0.8)
    axes.set(xlim=(0, timeline.duration), ylim=(0, 1), xlabel="time (s)", ylabel="probability", title=Path(timeline.path).name)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def output_stems(paths: Sequence[str | Path]) -> list[str]:
    """File stems for per-video outputs, made unique (`clip`, `clip-2`) when names repeat."""
    stems: list[str] = []
    for path in paths:
        stem, copy = Path(path).stem, 1
        while (stem if copy == 1 else f"{stem}-{copy}") in stems:
            copy += 1
        stems.append(stem if copy == 1 else f"{stem}-{copy}")
    return stems
