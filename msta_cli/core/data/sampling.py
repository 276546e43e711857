"""Which frames of a video make a clip: TSN segment sampling and dense (strided) sampling.

Pure integer functions. Every index is in range and indices are non-decreasing; a video
shorter than the clip repeats frames rather than failing. Test-time positions are fixed
functions of the video length, so every run scores the same views.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import torch

Generator = torch.Generator | random.Random
SAMPLINGS = ("segment", "dense")


@dataclass(frozen=True)
class ClipSampling:
    """How a model's test clips are drawn: `num_frames` per clip, one from each TSN segment or,
    `mode` dense, `dense_stride` frames apart (`data.sampling`, `data.dense_stride`).

    A run's config sets it and its checkpoints and exports record it, so that `msta predict`
    picks the frames `msta evaluate` scored.
    """

    num_frames: int
    mode: Literal["segment", "dense"] = "segment"
    dense_stride: int = 8  # used only by dense sampling

    def test_indices(self, video_frames: int, clips: int) -> list[list[int]]:
        """The frame positions of `clips` test clips of a `video_frames`-frame video."""
        if self.mode == "dense":
            return dense_test_indices(video_frames, self.num_frames, self.dense_stride, clips)
        return test_clip_indices(video_frames, self.num_frames, clips)

    def describe(self) -> str:
        """`8 frames`, or `8 frames (dense, stride 4)`: the stride only where it is used."""
        frames = f"{self.num_frames} frames"
        return f"{frames} (dense, stride {self.dense_stride})" if self.mode == "dense" else frames


def _randint(generator: Generator, low: int, high: int) -> int:
    """A uniform integer in [low, high) from either kind of generator."""
    if isinstance(generator, random.Random):
        return generator.randrange(low, high)
    return int(torch.randint(low, high, (1,), generator=generator))


def _check(video_frames: int, num_frames: int) -> None:
    if video_frames < 1 or num_frames < 1:
        raise ValueError(f"need at least one frame (video {video_frames}, clip {num_frames})")


def train_segment_indices(video_frames: int, num_frames: int, generator: Generator) -> list[int]:
    """TSN training sampling: split the video into `num_frames` equal segments, one random
    frame from each.

    Segment i covers [i*N//T, (i+1)*N//T); a segment that is empty because the video has
    fewer than T frames contributes its start frame, so short videos repeat frames.
    """
    _check(video_frames, num_frames)
    indices = []
    for segment in range(num_frames):
        start = segment * video_frames // num_frames
        end = max((segment + 1) * video_frames // num_frames, start + 1)
        indices.append(_randint(generator, start, end))
    return indices


def test_clip_indices(video_frames: int, num_frames: int, clips: int) -> list[list[int]]:
    """TSN test sampling: `clips` deterministic clips, clip k taking the frame at fraction
    (k + 0.5) / clips of every segment.

    One clip therefore takes each segment's centre (TSN's single-view test); more clips
    spread evenly inside the segments. Exact integer arithmetic, so no float rounding
    differs between machines.
    """
    _check(video_frames, num_frames)
    if clips < 1:
        raise ValueError(f"need at least one clip, got {clips}")
    return [
        [
            (2 * clips * segment + 2 * clip + 1) * video_frames // (2 * clips * num_frames)
            for segment in range(num_frames)
        ]
        for clip in range(clips)
    ]


def dense_indices(video_frames: int, num_frames: int, stride: int, start: int) -> list[int]:
    """`num_frames` frames `stride` apart from `start`.

    A video too short for the span (num_frames - 1) * stride + 1 gives frames spread evenly
    over the whole video instead (repeats when it has fewer than `num_frames` frames).
    """
    _check(video_frames, num_frames)
    if _dense_span(num_frames, stride) > video_frames:
        return [i * video_frames // num_frames for i in range(num_frames)]
    if not 0 <= start <= video_frames - _dense_span(num_frames, stride):
        raise ValueError(f"dense clip start {start} does not fit in {video_frames} frames")
    return [start + i * stride for i in range(num_frames)]


def dense_train_indices(
    video_frames: int, num_frames: int, stride: int, generator: Generator
) -> list[int]:
    """A dense clip at a uniformly random start."""
    _check(video_frames, num_frames)
    last_start = max(video_frames - _dense_span(num_frames, stride), 0)
    return dense_indices(video_frames, num_frames, stride, _randint(generator, 0, last_start + 1))


def dense_test_indices(
    video_frames: int, num_frames: int, stride: int, clips: int
) -> list[list[int]]:
    """`clips` dense clips whose starts sit at fractions (k + 0.5) / clips of the possible
    start range, the same convention as `test_clip_indices`."""
    _check(video_frames, num_frames)
    if clips < 1:
        raise ValueError(f"need at least one clip, got {clips}")
    starts = max(video_frames - _dense_span(num_frames, stride), 0) + 1
    return [
        dense_indices(video_frames, num_frames, stride, (2 * clip + 1) * starts // (2 * clips))
        for clip in range(clips)
    ]


def _dense_span(num_frames: int, stride: int) -> int:
    if stride < 1:
        raise ValueError(f"dense stride must be at least 1, got {stride}")
    return (num_frames - 1) * stride + 1
