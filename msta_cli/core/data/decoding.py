"""Decode only the frames a clip needs, with decord or PyAV, and one error type for bad videos.

Datasets hold missing, empty, truncated and damaged files; every such case raises
`VideoError` with the file's path and a short reason, so the data loader can record it and
training can go on.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

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
        raise VideoError(path, "file not found")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    container = _open_container(path)
    try:
        header = _read_header(path, container)
        size = _shrunk(header.height, header.width, max_short_side)
        if backend == "pyav":
            reader: _Reader = _PyAVReader(path, container, header.fps, size, num_threads)
        else:
            container.close()
            reader = _DecordReader(path, header.fps, size, num_threads)
    except BaseException:
        container.close()
        raise
    if header.declared_frames > reader.held_frames:
        reader.close()
        raise VideoError(
            path,
            f"damaged: header declares {header.declared_frames} frames, "
            f"file holds {reader.held_frames}",
        )
    return reader


@dataclass(frozen=True)
class _Header:
    declared_frames: int  # 0 where the container does not say (webm, mkv)
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
        raise VideoError(path, f"unreadable container: {_first_line(error)}") from error


def _states_size_and_rate(container: av.container.InputContainer) -> bool:
    if not container.streams.video:
        return False
    stream = container.streams.video[0]
    return bool(stream.codec_context.height and (stream.average_rate or stream.guessed_rate))


def _read_header(path: Path, container: av.container.InputContainer) -> _Header:
    if not container.streams.video:
        raise VideoError(path, "no video stream")
    stream = container.streams.video[0]
    if not _states_size_and_rate(container):
        raise VideoError(path, "unreadable container: no frame size or frame rate")
    return _Header(
        stream.frames,
        float(stream.average_rate or stream.guessed_rate),
        stream.codec_context.height,
        stream.codec_context.width,
    )


def _shrunk(height: int, width: int, max_short_side: int | None) -> tuple[int, int] | None:
    """The (height, width) to decode at, or None to keep the native size."""
    if max_short_side is None or min(height, width) <= max_short_side:
        return None
    scale = max_short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


# decord's messages start with one or more times and C++ source locations:
# "[19:48:05] /.../threaded_decoder.cc:292: [19:48:05] /.../threaded_decoder.cc:218: "
_DECORD_PREFIX = re.compile(r"^(?:\[[\d:]+\] \S+:\d+: )+")


def _first_line(error: BaseException) -> str:
    """The part of a decoder's error a user can read: FFmpeg's message without its error
    number and file name (VideoError names the file), decord's first line without its C++
    source location."""
    if isinstance(error, av.FFmpegError) and error.strerror:
        return error.strerror
    lines = str(error).strip().splitlines()
    return _DECORD_PREFIX.sub("", lines[0])[:300] if lines else type(error).__name__


class _Reader:
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
        frames = self._decode(unique.tolist())
        if frames.shape[0] != unique.numel():
            raise VideoError(
                self.path, f"damaged: decoded {frames.shape[0]} of {unique.numel()} frames"
            )
        if torch.equal(unique, wanted):
            return frames  # a training clip's sorted, distinct frames: spare a 2 MB copy
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
        super().__init__(path, len(self._video), fps, len(self._video))

    def _decode(self, indices: list[int]) -> torch.Tensor:
        try:
            return torch.from_numpy(self._video.get_batch(indices).asnumpy())
        except (*self._error_types, IndexError) as error:
            raise VideoError(self.path, f"decode failed: {_first_line(error)}") from error

    def close(self) -> None:
        del self._video


# Codecs whose bitstream marks the frames no other frame references (H.264 nal_ref_idc, HEVC
# NAL types), so FFmpeg's skip_frame="NONREF" drops exactly those. MPEG-4 Part 2 in AVI may
# pack a B-frame into the next packet, so for it and every other codec all packets between a
# keyframe and a wanted frame are decoded.
NONREF_CODECS = frozenset({"h264", "hevc"})


class _PyAVReader(_Reader):
    """Decodes only what the wanted frames need: each from the keyframe it depends on.

    Hand-written for speed (bench/loader_throughput.py): a sparse training clip of 8 frames
    from 150 needs its frames, the keyframe before each and the reference frames between, not
    every frame. So for each wanted frame decoding starts at the last keyframe it depends on;
    overlapping spans are merged into one pass; in a pass, frames that are neither wanted nor
    referenced are skipped by the decoder (NONREF_CODECS); and the thread's swscale context
    converts only the wanted frames. The result is bit-identical to decoding every frame.

    Opening demuxes every packet (no decoding) to learn each frame's timestamp and the
    keyframes, as decord does: containers such as webm do not store a frame count, and
    timestamps are the only reliable way to know which frame a decoder handed back. Frames an
    MP4 edit list hides (a stream copy cut between keyframes keeps the frames before the cut
    and marks them discarded) are decoded where later frames need them but never shown, as in
    a player.
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
        self._skips_nonref = self._stream.codec_context.name in NONREF_CODECS
        self._size = size
        try:  # what each packet is, not its data: a long video's packets would fill memory
            packets = [
                (_timestamp(packet), packet.dts, packet.is_keyframe, packet.is_discard)
                for packet in container.demux(self._stream)
                if packet.size
            ]
        except av.FFmpegError as error:
            raise VideoError(path, f"unreadable container: {_first_line(error)}") from error
        if any(pts is None for pts, *_ in packets):
            raise VideoError(
                path,
                "unreadable container: frames without timestamps (a raw stream?); put it in a "
                "container first, e.g. ffmpeg -r FPS -i VIDEO -c copy VIDEO.mkv",
            )
        self._file_pts: list[int] = [pts for pts, *_ in packets]  # in decoding (file) order
        # where to seek for each packet: demuxers index decoding times (MPEG-TS seeks by them)
        self._seek_times = [pts if dts is None else dts for pts, dts, *_ in packets]
        self._position_of = {pts: position for position, pts in enumerate(self._file_pts)}
        self._keyframes = sorted({0, *(n for n, (_, _, key, _) in enumerate(packets) if key)})
        self._display_pts = sorted(pts for pts, _, _, discarded in packets if not discarded)
        super().__init__(
            path, len(self._display_pts), fps, _held_frames(self._file_pts, self._stream, fps)
        )

    def _decode(self, indices: list[int]) -> torch.Tensor:
        wanted = {self._display_pts[index]: index for index in indices}
        frames: dict[int, np.ndarray] = {}
        try:
            for first, last in self._spans([self._position_of[pts] for pts in wanted]):
                self._decode_span(first, last, wanted, frames)
        except av.FFmpegError as error:
            raise VideoError(self.path, f"decode failed: {_first_line(error)}") from error
        missing = [index for index in indices if index not in frames]
        if missing:
            raise VideoError(self.path, f"damaged: frame {missing[0]} could not be decoded")
        return torch.from_numpy(np.stack([frames[index] for index in indices]))

    def _spans(self, positions: list[int]) -> list[tuple[int, int]]:
        """(first, last) file positions to decode for the wanted positions, overlaps merged.

        A leading B-frame's span starts a keyframe earlier than the span of the keyframe it
        follows, so spans are merged in order of their start, not of the wanted positions.
        """
        spans: list[tuple[int, int]] = []
        for first, last in sorted((self._keyframe_for(position), position) for position in positions):
            if spans and first <= spans[-1][1] + 1:
                spans[-1] = (spans[-1][0], max(spans[-1][1], last))
            else:
                spans.append((first, last))
        return spans

    def _keyframe_for(self, position: int) -> int:
        """The last keyframe before `position` that is also shown before it.

        A frame shown before the keyframe it follows in the file (a leading B-frame of an open
        GOP) references the previous interval, so decoding starts at the keyframe before.
        """
        pts = self._file_pts[position]
        candidates = self._keyframes[: bisect_right(self._keyframes, position)]
        return next((key for key in reversed(candidates) if self._file_pts[key] <= pts), 0)

    def _decode_span(
        self, first: int, last: int, wanted: dict[int, int], frames: dict[int, np.ndarray]
    ) -> None:
        codec = self._stream.codec_context
        codec.flush_buffers()
        for position, packet in self._packets(first, last):
            skip_unreferenced = self._skips_nonref and self._file_pts[position] not in wanted
            codec.skip_frame = "NONREF" if skip_unreferenced else "DEFAULT"
            self._keep(codec.decode(packet), wanted, frames)
        codec.skip_frame = "DEFAULT"
        self._keep(codec.decode(None), wanted, frames)  # frames the decoder still holds back

    def _packets(self, first: int, last: int) -> Iterator[tuple[int, av.Packet]]:
        """The packets at file positions `first` (a keyframe) to `last`, with their positions.

        Containers without an index (MPEG-TS) seek by a timestamp search that can land before
        the keyframe (the packets up to it are passed over) or after it; then reading starts
        again from the first packet.
        """
        for seek_to in (first, 0):
            self._container.seek(
                self._seek_times[seek_to], stream=self._stream, backward=True, any_frame=False
            )
            reached = False
            for packet in self._container.demux(self._stream):
                position = self._position_of.get(_timestamp(packet))
                if position is None or position < first:
                    continue  # before the span, or the empty packet that ends the stream
                if position > last or (position > first and not reached):
                    break
                reached = True
                yield position, packet
            if reached:
                return

    def _keep(
        self, decoded: list[av.VideoFrame], wanted: dict[int, int], frames: dict[int, np.ndarray]
    ) -> None:
        for frame in decoded:
            index = wanted.get(frame.pts)
            if index is not None and index not in frames:
                height, width = self._size or (frame.height, frame.width)
                rgb = _own_reformatter().reformat(frame, format="rgb24", height=height, width=width)
                frames[index] = rgb.to_ndarray()

    def close(self) -> None:
        self._container.close()


_converters = threading.local()
# Converters inherited through a fork: kept referenced so that they are never freed in the child.
_inherited: list[VideoReformatter] = []


def _own_reformatter() -> VideoReformatter:
    """This thread's swscale converter, made in this process.

    Reused across readers because setting one up costs 3-7 ms (timed ad hoc on this project's
    VM; more than converting a whole clip), which a reader per clip would pay every time. One
    made before a fork is never used (or freed) in the child: the forked copy deadlocked a
    DataLoader worker.
    """
    made = getattr(_converters, "made", None)
    if made is None or made[0] != os.getpid():
        if made is not None:
            _inherited.append(made[1])
        _converters.made = made = (os.getpid(), VideoReformatter())
    return made[1]


def _held_frames(file_pts: list[int], stream: av.video.stream.VideoStream, fps: float) -> int:
    """Frames the file holds data or time for: its packets, or the frame times its timestamps
    span where that is more. An AVI's header counts the empty chunks that repeat a frame (the
    muxer fills timestamp gaps with them) and an MP4's counts frames an edit list hides; only
    a file cut short holds fewer than its header declares."""
    if not file_pts or stream.time_base is None:
        return len(file_pts)
    span = float((max(file_pts) - min(file_pts)) * stream.time_base) * fps
    return max(len(file_pts), round(span) + 1)


def _timestamp(packet: av.Packet) -> int | None:
    """A packet's presentation time; AVI stores none for B-frame streams, only decoding times."""
    return packet.pts if packet.pts is not None else packet.dts
