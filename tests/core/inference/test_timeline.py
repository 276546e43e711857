import csv
import io

import numpy as np
import pytest
import torch

from msta_cli.core.backbone import Preprocessing
from msta_cli.core.data.dataset import VideoFailure
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError
from msta_cli.core.inference.predictor import TorchPredictor
from msta_cli.core.inference.reports import windows_csv
from msta_cli.core.inference.timeline import (
    Window,
    output_stems,
    parse_duration,
    segments_of,
    shown_frames,
    timelines,
    video_timeline,
    window_starts,
    write_timeline,
)
from tests.core.inference.helpers import (
    SAMPLING,
    dark_bright_classes,
    tiny_adapted_model,
    write_two_scene_video,
)
from tests.helpers.datasets import write_clip
from tests.helpers.videos import write_not_a_video, write_video

GREY_STEP = 5  # frame i of the grey video is uniformly 5 * i


@pytest.fixture(scope="module")
def predictor(tiny_backbone_name):
    model = tiny_adapted_model(tiny_backbone_name)
    return TorchPredictor(model, dark_bright_classes(model), SAMPLING, "fp32", "dark/bright")


def test_durations():
    assert [parse_duration(text, "--window") for text in ("2s", "1.5", "500ms", " .5s ")] == [2.0, 1.5, 0.5, 0.5]
    for bad in ("0s", "-1s", "2 minutes", ""):
        with pytest.raises(InputError, match="--window"):
            parse_duration(bad, "--window")


def test_windows_cover_the_video_and_the_last_one_ends_with_it():
    assert window_starts(64, 16, 8) == [0, 8, 16, 24, 32, 40, 48]
    assert window_starts(60, 16, 8) == [0, 8, 16, 24, 32, 40, 44]
    assert window_starts(10, 16, 8) == [0]


def test_segments_split_half_way_between_window_centres():
    def window(start: float, p_first: float) -> Window:
        return Window(start, start + 2, torch.tensor([p_first, 1 - p_first]))

    windows = [window(0, 0.9), window(1, 0.8), window(2, 0.3), window(3, 0.2), window(4, 0.7)]
    segments = segments_of(windows, ("a", "b"), duration=6.0)
    assert [(s.label, s.start, s.end, s.first_window, s.last_window) for s in segments] == [
        ("a", 0.0, 2.5, 0, 1), ("b", 2.5, 4.5, 2, 3), ("a", 4.5, 6.0, 4, 4)
    ]
    assert segments[0].score == pytest.approx(0.85)


def test_the_dominant_action_changes_at_the_window_where_the_scene_changes(tmp_path, predictor):
    path = write_two_scene_video(tmp_path / "two.mp4")  # dark until 4.5 s, bright until 8 s
    timeline = video_timeline(predictor, path, window=2.0, stride=1.0, batch_size=3)
    assert [(w.start, w.end) for w in timeline.windows] == [(s, s + 2.0) for s in range(7)]
    assert [s.label for s in timeline.segments] == ["dark", "bright"]
    # Window 3 (3-5 s) is mostly dark, window 4 (4-6 s) mostly bright.
    assert (timeline.segments[0].last_window, timeline.segments[1].first_window) == (3, 4)
    assert timeline.segments[0].end == timeline.segments[1].start == pytest.approx(4.5)
    assert timeline.segments[1].end == pytest.approx(timeline.duration) == pytest.approx(8.0)


def test_windows_csv_and_plot_are_written(tmp_path, predictor):
    timeline = video_timeline(predictor, write_two_scene_video(tmp_path / "two.mp4"), 2.0, 2.0)
    table, plot = write_timeline(timeline, tmp_path / "out", "two", k=5)
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert list(rows[0]) == ["window", "start", "end", "label_1", "probability_1", "label_2", "probability_2"]
    assert [row["label_1"] for row in rows] == ["dark", "dark", "bright", "bright"]
    assert rows == list(csv.DictReader(io.StringIO(windows_csv(timeline, 2))))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_video_shorter_than_a_window_is_one_window_and_bad_videos_are_failures(tmp_path, predictor):
    short = write_video(tmp_path / "short.mp4", num_frames=6)
    bad = write_not_a_video(tmp_path / "bad.mp4")
    good, failure = list(timelines(predictor, [short, bad], window=2.0, stride=1.0))
    assert len(good.windows) == 1 and len(good.segments) == 1
    assert isinstance(failure, VideoFailure) and failure.path == str(bad)


class _FrameRecorder:
    """A predictor that records which frames each clip shows, read from the grey video's levels."""

    labels = ("a", "b")
    description = "frame recorder"
    preprocessing = Preprocessing(32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "bicubic")

    def __init__(self, sampling: ClipSampling):
        self.sampling = sampling
        self.clips: list[list[int]] = []

    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        self.clips += [[round(float(frame.mean()) * 255 / GREY_STEP) for frame in clip] for clip in frames]
        return torch.zeros(len(frames), len(self.labels))


@pytest.mark.parametrize(
    ("sampling", "clips"),
    [
        # 20-frame windows every 10 frames: dense clips of 4 frames 3 apart start in the middle
        # of the window's 11 possible starts, as a test clip of a 20-frame video would.
        (ClipSampling(4, "dense", 3), [[5, 8, 11, 14], [15, 18, 21, 24], [25, 28, 31, 34]]),
        (ClipSampling(4), [[2, 7, 12, 17], [12, 17, 22, 27], [22, 27, 32, 37]]),
    ],
)
def test_windows_are_sampled_as_the_models_test_clips(tmp_path, sampling, clips):
    levels = np.arange(40, dtype=np.uint8) * GREY_STEP
    video = write_clip(tmp_path / "grey.mp4", np.broadcast_to(levels[:, None, None, None], (40, 32, 48, 3)).copy(), fps=10)
    recorder = _FrameRecorder(sampling)
    timeline = video_timeline(recorder, video, window=2.0, stride=1.0)
    assert [(w.start, w.end) for w in timeline.windows] == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]
    assert recorder.clips == clips


def test_output_stems_are_unique():
    assert output_stems(["a/clip.mp4", "b/clip.mp4", "clip.avi", "other.mp4"]) == ["clip", "clip-2", "clip-3", "other"]


def test_a_constant_rate_video_keeps_its_frames_even_with_millisecond_timestamps():
    times = [round(index / 30, 3) for index in range(90)]  # WebM rounds 1/30 s to ms
    assert shown_frames(times, 30.0) == list(range(90))


def test_a_variable_rate_video_shows_each_frame_for_as_long_as_its_timestamps_say():
    times = [0.0, 0.1, 0.2, 0.3, 2.3, 2.4]  # a 2 s freeze after the fourth frame
    shown = shown_frames(times, 10.0)
    assert len(shown) == 25 and shown[:4] == [0, 1, 2, 3] and shown[4:23] == [3] * 19 and shown[23:] == [4, 5]
