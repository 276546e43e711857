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
    return _DECORD_PREFIX.sub("", lines[0])[:300] if lines else type(error).__name__


class Reader:
    """Index checks and de-duplication shared by the backends; they implement `_decode`."""

    def __init__(self, path: Path, num_frames: int, fps: float, held_frames: int) -> None:
        self.path = str(path)
        self.num_frames = num_frames
        self.fps = fps
        # what the file holds, shown or not, to compare with the frame count its header declares
        self.held_frames = held_frames

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
