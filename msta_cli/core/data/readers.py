"""What every decoding backend's reader shares: the error type, the reader interface, the
index checks and readable error reasons.

Datasets hold missing, empty, truncated and damaged files; every such case raises
`VideoError` with the file's path and a short reason, so the data loader can record it and
training can go on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import torch

from msta_cli.core.errors import MstaError


class VideoError(MstaError):
    """A video that cannot give the requested frames: missing, empty, unreadable or damaged."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class VideoReader(Protocol):
    """An open video that decodes frames by index; use it as a context manager."""

    path: str
    num_frames: int
    fps: float

    def get_batch(self, indices: Sequence[int]) -> torch.Tensor:
        """uint8 (len(indices), H, W, 3) RGB frames, in the order asked (repeats allowed)."""
        ...

    def frame_seconds(self) -> list[float]:
        """Each frame's time from the first, in display order (variable frame rates differ from index / fps)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> VideoReader: ...

    def __exit__(self, *exc_info: object) -> None: ...


# decord's messages start with one or more times and C++ source locations:
# "[19:48:05] /.../threaded_decoder.cc:292: [19:48:05] /.../threaded_decoder.cc:218: "
_DECORD_PREFIX = re.compile(r"^(?:\[[\d:]+\] \S+:\d+: )+")
# and FFmpeg's failures come as assertions on its return code: "Check failed:
# avcodec_send_packet(dec_ctx_.get(), pkt.get()) >= 0 (-1094995529 vs. 0) Thread worker: ..."
_DECORD_FFMPEG_CHECK = re.compile(r"^Check failed: .*? \((-\d+) vs\. 0\) ?(.*)$")


@contextmanager
def as_video_error(path: str | Path) -> Iterator[None]:
    """A decoder failing in an unforeseen way on one file raises that file's VideoError, which a
    run records before going on; MemoryError is not about the file and still stops the run."""
    try:
        yield
    except (VideoError, MemoryError):
        raise
    except Exception as error:
        raise VideoError(path, f"decode failed: {type(error).__name__}: {first_line(error)}") from error


def first_line(error: BaseException) -> str:
    """The part of a decoder's error a user can read: FFmpeg's message without its error
    number and file name (VideoError names the file), decord's first line without its C++
    source location."""
    if isinstance(error, av.FFmpegError) and error.strerror:
        return error.strerror
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    line = _DECORD_PREFIX.sub("", lines[0])
    check = _DECORD_FFMPEG_CHECK.match(line)
    if check:
        try:
            av.error.err_check(int(check.group(1)))  # raises the FFmpegError of that code
        except av.FFmpegError as ffmpeg_error:
            return f"{ffmpeg_error.strerror} ({check.group(2)})" if check.group(2) else ffmpeg_error.strerror
    return line[:300]


@dataclass(frozen=True)
class Held:
    """What a file holds data or time for, shown or not, to compare with what its header
    declares: only a file cut short holds less."""

    frames: int
    seconds: float

    @classmethod
    def from_timestamps(cls, count: int, first: float, last: float, last_end: float, fps: float) -> Held:
        """`count` frames whose first starts at `first` and last at `last`, shown until `last_end`
        (seconds). Frames are the packets, or the frame times the timestamps span where that is
        more: an AVI's header counts the empty chunks that repeat a frame (the muxer fills
        timestamp gaps with them) and an MP4's counts frames an edit list hides. Seconds run to
        the end of the last frame, which a slideshow or screen recording shows for long."""
        return cls(max(count, round((last - first) * fps) + 1), max(count / fps, last_end - first))


class Reader:
    """Index checks and de-duplication shared by the backends; they implement `_decode`."""

    def __init__(self, path: Path, num_frames: int, fps: float, held: Held) -> None:
        self.path = str(path)
        self.num_frames = num_frames
        self.fps = fps
        self.held = held

    def get_batch(self, indices: Sequence[int]) -> torch.Tensor:
        wanted = torch.as_tensor(list(indices), dtype=torch.long)
        if wanted.numel() == 0:
            raise ValueError("get_batch needs at least one frame index")
        outside = wanted[(wanted < 0) | (wanted >= self.num_frames)]
        if outside.numel():
            raise VideoError(
                self.path,
                f"frame index {outside[0].item()} out of range (video has {self.num_frames} frames)",
            )
        unique, inverse = torch.unique(wanted, sorted=True, return_inverse=True)
        with as_video_error(self.path):
            frames = self._decode(unique.tolist())
        if frames.shape[0] != unique.numel():
            raise VideoError(
                self.path, f"damaged: decoded {frames.shape[0]} of {unique.numel()} frames"
            )
        if torch.equal(unique, wanted):
            return frames  # a training clip's sorted, distinct frames: spare a 2 MB copy
        return frames[inverse]

    def frame_seconds(self) -> list[float]:
        """index / fps: backends that know the frames' timestamps give those instead."""
        return [index / self.fps for index in range(self.num_frames)]

    def _decode(self, indices: list[int]) -> torch.Tensor:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
