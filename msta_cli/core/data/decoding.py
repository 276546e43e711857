"""Open a video for random frame access with PyAV (msta's sparse reader, the default) or decord.

Opening checks what every backend needs first: the file exists and is not empty, the container
header states a frame size and rate, and the file holds the frames its header declares.
Every failure raises `VideoError` (readers.py) with the file's path and a short reason.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import av
import torch

from msta_cli.core.data.pyav_reader import PyAVReader, main_video_stream
from msta_cli.core.data.readers import Held, Reader, VideoError, VideoReader, as_video_error, first_line
from msta_cli.core.errors import InputError

__all__ = ["BACKENDS", "VideoError", "VideoReader", "decord_available", "open_video", "resolve_backend"]

BACKENDS = ("auto", "decord", "pyav")


def decord_available() -> bool:
    """decord has no wheels for aarch64 or macOS arm; there msta decodes with PyAV."""
    return importlib.util.find_spec("decord") is not None


def resolve_backend(backend: str) -> str:
    """The backend `open_video` uses: "auto" is PyAV; "decord" stays selectable.

    msta's PyAV reader decodes only what the sampled frames depend on and is faster than
    decord 0.6 on every stream measured (1.2-2.0x per 8-frame clip: H.264 with 250 or 12-frame
    keyframe intervals, 320x240 to 1280x720, VP9; bench/decode_speed.py). decord also returns
    wrong frames from AVIs with B-frames (AVI stores no presentation timestamps; dmlc/decord
    issues 195 and 252, reproduced in msta's tests) and from MPEG-TS with B-frames.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown video backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "decord" and not decord_available():
        raise InputError("video backend 'decord' is not installed on this platform; use 'pyav'")
    return "pyav" if backend == "auto" else backend


def open_video(
    path: str | Path,
    backend: str = "auto",
    num_threads: int = 1,
    max_short_side: int | None = None,
) -> VideoReader:
    """Open `path` for random access; raise VideoError when it cannot give its frames.

    `max_short_side` shrinks larger frames while decoding (aspect kept), which keeps later
    copies small. Smaller frames keep their size: the transforms crop a fraction of the short
    side and resize that to the model's input, so enlarging first would cost time (swscale
    resizing is ~10x its colour conversion) and add nothing. `num_threads` is per decoder
    (0 lets the decoder choose); keep 1 inside data-loader workers.
    """
    path = Path(path)
    backend = resolve_backend(backend)
    if not path.is_file():
        raise VideoError(path, "not a file (a folder)" if path.is_dir() else "file not found")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    container = _open_container(path)
    try:
        with as_video_error(path):
            header = _read_header(path, container)
            size = _shrunk(header.height, header.width, max_short_side)
            if backend == "pyav":
                reader: Reader = PyAVReader(path, container, header.fps, size, num_threads)
            else:
                container.close()
                reader = _open_decord(path, header, size, num_threads)
    except BaseException:
        container.close()
        raise
    problem = _damage(header, reader)
    if problem:
        reader.close()
        raise VideoError(path, problem)
    return reader


def _damage(header: _Header, reader: Reader) -> str | None:
    """Why a file that opened cannot give the frames it should, if it cannot."""
    if reader.num_frames == 0:
        return "no frames"
    held = reader.held
    if header.declared_frames > held.frames:
        return f"damaged: header declares {header.declared_frames} frames, file holds {held.frames}"
    # WebM and MKV state no frame count, only a duration; a file cut short keeps it. The
    # tolerance (5% and half a second) leaves room for a last frame whose display time the file
    # does not state and for millisecond time bases.
    if header.declared_seconds - held.seconds > 0.05 * header.declared_seconds + 0.5:
        expected = round(header.declared_seconds * header.fps)
        return (
            f"damaged: header declares {header.declared_seconds:.2f} s (about {expected} frames), "
            f"file holds {held.seconds:.2f} s ({held.frames} frames)"
        )
    return None


@dataclass(frozen=True)
class _Header:
    declared_frames: int  # 0 where the container does not say (webm, mkv)
    declared_seconds: float  # the video stream's duration where MKV/WebM state it, else 0
    fps: float
    height: int
    width: int


# FFmpeg's stream probe (avformat_find_stream_info, run by every av.open) opens a decoder and
# feeds it the first packets: it decodes up to 20 frames of H.264 or HEVC to guess a
# reordering delay (2 ms per open at 320x240, 20 ms at 1280x720 on this project's VM). Told to
# skip every frame, the decoder still costs 0.7 ms per H.264 open, and VP9's decodes its
# keyframe anyway (2 ms at 320x240; both timed ad hoc, av.open alone). The reader needs only the frame size and rate, which the
# container header states, and orders frames by their timestamps, so the probe gets no
# decoder at all (the format context's decoder whitelist is empty). The decoder that later
# reads the frames is a separate one and is not affected (tests compare its output with
# decoding every frame). Where the header alone lacks the size (MPEG-4 Part 2 in MP4, raw
# MJPEG), the probe runs again with a decoder that skips every frame it can.
_PROBE_WITHOUT_DECODER = {"codec_whitelist": "none"}
_PROBE_SKIPPING_FRAMES = {"skip_frame": "all"}


def _open_container(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), container_options=_PROBE_WITHOUT_DECODER)
        if _states_size_and_rate(container):
            return container
        container.close()
        return av.open(str(path), options=_PROBE_SKIPPING_FRAMES)
    except av.FFmpegError as error:
        raise VideoError(path, f"unreadable container: {first_line(error)}") from error


def _states_size_and_rate(container: av.container.InputContainer) -> bool:
    stream = main_video_stream(container)
    return bool(stream and stream.codec_context.height and (stream.average_rate or stream.guessed_rate))


def _read_header(path: Path, container: av.container.InputContainer) -> _Header:
    stream = main_video_stream(container)
    if stream is None:
        raise VideoError(path, "no video stream")
    if not _states_size_and_rate(container):
        raise VideoError(path, "unreadable container: no frame size or frame rate")
    return _Header(
        stream.frames,
        _stream_seconds(stream),
        float(stream.average_rate or stream.guessed_rate),
        stream.codec_context.height,
        stream.codec_context.width,
    )


def _stream_seconds(stream: av.video.stream.VideoStream) -> float:
    """The video stream's duration as MKV and WebM state it (a DURATION tag "HH:MM:SS.fraction"
    that FFmpeg's muxer and mkvmerge write per track); 0 where it is absent. Not the stream's
    `duration`, which FFmpeg fills in from the whole file (an audio track or a cover image may
    outlast the video) or estimates from the bit rate."""
    hours, _, rest = stream.metadata.get("DURATION", "").partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return 0.0


def _shrunk(height: int, width: int, max_short_side: int | None) -> tuple[int, int] | None:
    """The (height, width) to decode at, or None to keep the native size."""
    if max_short_side is None or min(height, width) <= max_short_side:
        return None
    scale = max_short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _open_decord(path: Path, header: _Header, size: tuple[int, int] | None, num_threads: int) -> Reader:
    """decord's reader; where decord cannot open a file, PyAV's checks say why if they can
    (decord's own message is a C++ assertion such as "Cannot create buffer source")."""
    try:
        return _DecordReader(path, header, size, num_threads)
    except VideoError as decord_error:
        with _open_container(path) as container:
            problem = _damage(header, PyAVReader(path, container, header.fps, None, 1))
        raise VideoError(path, problem) if problem else decord_error from None


class _DecordReader(Reader):
    def __init__(
        self, path: Path, header: _Header, size: tuple[int, int] | None, num_threads: int
    ) -> None:
        import decord

        self._error_types = (decord.DECORDError, RuntimeError)
        try:
            if size is not None and _turned_sideways(decord.VideoReader(str(path)), header):
                # decord 0.6 turns a phone video upright but resizes it wrongly (squashed, or an
                # array of the wrong size), so such a video keeps its size
                size = None
            height, width = size or (-1, -1)
            self._video = decord.VideoReader(
                str(path), height=height, width=width, num_threads=num_threads
            )
        except self._error_types as error:
            raise VideoError(path, f"unreadable container: {first_line(error)}") from error
        count = len(self._video)
        held = Held(count, count / header.fps)
        if count:
            times = self._video.get_frame_timestamp(range(count))
            held = Held.from_timestamps(count, float(times[:, 0].min()), float(times[:, 0].max()), float(times[:, 1].max()), header.fps)
        super().__init__(path, count, header.fps, held)

    def _decode(self, indices: list[int]) -> torch.Tensor:
        try:
            return torch.from_numpy(self._video.get_batch(indices).asnumpy())
        except (*self._error_types, IndexError) as error:
            raise VideoError(self.path, f"decode failed: {first_line(error)}") from error

    def close(self) -> None:
        del self._video


def _turned_sideways(video, header: _Header) -> bool:
    """Whether decord shows the frames turned a quarter (a display rotation of 90 or 270
    degrees, which it applies). The header gives no rotation without decoding, so the first
    frame is decoded at full size: a cost paid only by the decord backend, on shrunk opens."""
    if header.height == header.width:
        return False
    height, width = video.get_batch([0]).shape[1:3]
    return (height, width) == (header.width, header.height)
