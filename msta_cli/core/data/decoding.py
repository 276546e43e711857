"""Decode only the frames a clip needs, with decord or PyAV, and one error type for bad videos.

Datasets hold missing, empty, truncated and damaged files; every such case raises
`VideoError` with the file's path and a short reason, so the data loader can record it and
training can go on.
"""

from __future__ import annotations

import importlib.util
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import torch

from msta_cli.core.errors import InputError, MstaError

BACKENDS = ("auto", "decord", "pyav")


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

    def close(self) -> None: ...

    def __enter__(self) -> VideoReader: ...

    def __exit__(self, *exc_info: object) -> None: ...


def decord_available() -> bool:
    """decord has no wheels for aarch64 or macOS arm; there msta decodes with PyAV."""
    return importlib.util.find_spec("decord") is not None


def resolve_backend(backend: str, path: str | Path) -> str:
    """The backend `open_video` uses for `path`: "auto" prefers decord, except for AVI.

    decord 0.6 returns wrong frames from AVIs with B-frames (AVI stores no presentation
    timestamps; dmlc/decord issues 195 and 252, reproduced in msta's tests), so "auto"
    decodes AVI with PyAV, which maps frames by timestamp.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown video backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        use_decord = decord_available() and Path(path).suffix.lower() != ".avi"
        return "decord" if use_decord else "pyav"
    if backend == "decord" and not decord_available():
        raise InputError("video backend 'decord' is not installed on this platform; use 'pyav'")
    return backend


def open_video(
    path: str | Path,
    backend: str = "auto",
    num_threads: int = 1,
    short_side: int | None = None,
) -> VideoReader:
    """Open `path` for random access; raise VideoError when it cannot give its frames.

    `short_side` resizes frames while decoding (aspect kept), which keeps later copies small
    and lets videos of different resolutions share a batch. `num_threads` is per decoder
    (0 lets the decoder choose); keep 1 inside data-loader workers.
    """
    path = Path(path)
    backend = resolve_backend(backend, path)
    if not path.is_file():
        raise VideoError(path, "file not found")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    container = _open_container(path)
    try:
        header = _read_header(path, container)
        size = _resized(header.height, header.width, short_side)
        if backend == "pyav":
            reader: _Reader = _PyAVReader(path, container, header.fps, size, num_threads)
        else:
            container.close()
            reader = _DecordReader(path, header.fps, size, num_threads)
    except BaseException:
        container.close()
        raise
    if header.declared_frames > reader.num_frames:
        reader.close()
        raise VideoError(
            path,
            f"damaged: header declares {header.declared_frames} frames, "
            f"file holds {reader.num_frames}",
        )
    return reader


@dataclass(frozen=True)
class _Header:
    declared_frames: int  # 0 where the container does not say (webm, mkv)
    fps: float
    height: int
    width: int


def _open_container(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except av.FFmpegError as error:
        raise VideoError(path, f"unreadable container: {_first_line(error)}") from error


def _read_header(path: Path, container: av.container.InputContainer) -> _Header:
    if not container.streams.video:
        raise VideoError(path, "no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    if not stream.codec_context.height or not rate:
        raise VideoError(path, "unreadable container: no frame size or frame rate")
    return _Header(
        stream.frames, float(rate), stream.codec_context.height, stream.codec_context.width
    )


def _resized(height: int, width: int, short_side: int | None) -> tuple[int, int] | None:
    """The (height, width) to decode at, or None to keep the native size."""
    if short_side is None or short_side == min(height, width):
        return None
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _first_line(error: BaseException) -> str:
    """decord errors carry a C++ stack trace; the first line is the part a user can read."""
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


class _Reader:
    """Index checks and de-duplication shared by the backends; they implement `_decode`."""

    def __init__(self, path: Path, num_frames: int, fps: float) -> None:
        self.path = str(path)
        self.num_frames = num_frames
        self.fps = fps

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
        frames = self._decode(unique.tolist())
        if frames.shape[0] != unique.numel():
            raise VideoError(
                self.path, f"damaged: decoded {frames.shape[0]} of {unique.numel()} frames"
            )
        return frames[inverse]

    def _decode(self, indices: list[int]) -> torch.Tensor:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _DecordReader(_Reader):
    def __init__(
        self, path: Path, fps: float, size: tuple[int, int] | None, num_threads: int
    ) -> None:
        import decord

        height, width = size or (-1, -1)
        self._error_types = (decord.DECORDError, RuntimeError)
        try:
            self._video = decord.VideoReader(
                str(path), height=height, width=width, num_threads=num_threads
            )
        except self._error_types as error:
            raise VideoError(path, f"unreadable container: {_first_line(error)}") from error
        super().__init__(path, len(self._video), fps)

    def _decode(self, indices: list[int]) -> torch.Tensor:
        try:
            return torch.from_numpy(self._video.get_batch(indices).asnumpy())
        except (*self._error_types, IndexError) as error:
            raise VideoError(self.path, f"decode failed: {_first_line(error)}") from error

    def close(self) -> None:
        del self._video


class _PyAVReader(_Reader):
    """Seeks to the keyframe before each wanted frame and decodes forward from there.

    Opening demuxes every packet (no decoding) to learn each frame's timestamp and the
    keyframes, as decord does: containers such as webm do not store a frame count, and
    timestamps are the only reliable way to know which frame a decoder handed back.
    """

    def __init__(
        self,
        path: Path,
        container: av.container.InputContainer,
        fps: float,
        size: tuple[int, int] | None,
        num_threads: int,
    ) -> None:
        self._container = container
        self._stream = container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._stream.codec_context.thread_count = num_threads
        self._size = size
        try:
            stamps = [
                (packet.pts if packet.pts is not None else packet.dts, packet.is_keyframe)
                for packet in container.demux(self._stream)
                if packet.size
            ]
        except av.FFmpegError as error:
            raise VideoError(path, f"unreadable container: {_first_line(error)}") from error
        stamps.sort()
        self._pts = [pts for pts, _ in stamps]
        self._index_of = {pts: index for index, pts in enumerate(self._pts)}
        self._keyframes = sorted({0, *(index for index, (_, key) in enumerate(stamps) if key)})
        self._frames = None  # decoding iterator, positioned after `self._position`
        self._position = -1
        super().__init__(path, len(self._pts), fps)

    def _decode(self, indices: list[int]) -> torch.Tensor:
        frames = []
        try:
            for index in indices:
                frames.append(self._frame_at(index))
        except av.FFmpegError as error:
            raise VideoError(self.path, f"decode failed: {_first_line(error)}") from error
        return torch.from_numpy(np.stack(frames))

    def _frame_at(self, index: int) -> np.ndarray:
        keyframe = self._keyframes[bisect_right(self._keyframes, index) - 1]
        if self._frames is None or index <= self._position or keyframe > self._position:
            self._container.seek(
                self._pts[keyframe], stream=self._stream, backward=True, any_frame=False
            )
            self._frames = self._container.decode(self._stream)
            self._position = -1
        for frame in self._frames:
            self._position = self._index_of.get(frame.pts, self._position)
            if self._position == index:
                height, width = self._size or (frame.height, frame.width)
                return frame.to_ndarray(format="rgb24", height=height, width=width)
            if self._position > index:
                break
        self._frames = None
        raise VideoError(self.path, f"damaged: frame {index} could not be decoded")

    def close(self) -> None:
        self._frames = None
        self._container.close()


