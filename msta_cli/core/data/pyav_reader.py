"""msta's sparse PyAV reader: decodes only the frames a clip needs and what they reference."""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from msta_cli.core.data.readers import Held, Reader, VideoError, first_line

# Codecs whose bitstream marks the frames no other frame references (H.264 nal_ref_idc, HEVC
# NAL types), so FFmpeg's skip_frame="NONREF" drops exactly those. MPEG-4 Part 2 in AVI may
# pack a B-frame into the next packet, so for it and every other codec all packets between a
# keyframe and a wanted frame are decoded.
NONREF_CODECS = frozenset({"h264", "hevc"})


class PyAVReader(Reader):
    """Decodes only what the wanted frames need: each from the keyframe it depends on.

    Hand-written for speed (bench/loader_throughput.py): a sparse training clip of 8 frames
    from 150 needs its frames, the keyframe before each and the reference frames between, not
    every frame. So for each wanted frame decoding starts at the last keyframe it depends on;
    overlapping spans are merged into one pass; in a pass, frames that are neither wanted nor
    referenced are skipped by the decoder (NONREF_CODECS); and the thread's swscale context
    converts only the wanted frames. The result is bit-identical to decoding every frame, turned
    upright as a player shows it (phone videos store a display rotation).

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
        self._stream = main_video_stream(container)
        self._stream.thread_type = "AUTO"
        self._stream.codec_context.thread_count = num_threads
        self._skips_nonref = self._stream.codec_context.name in NONREF_CODECS
        # every frame is converted to one size: the first decoded frame's unless given (a
        # stream may change its frame size midway)
        self._size = size
        try:  # what each packet is, not its data: a long video's packets would fill memory
            packets = [
                (_timestamp(packet), packet.dts, packet.is_keyframe, packet.is_discard, packet.duration)
                for packet in container.demux(self._stream)
                if packet.size
            ]
        except av.FFmpegError as error:
            raise VideoError(path, f"unreadable container: {first_line(error)}") from error
        if any(pts is None for pts, *_ in packets):
            raise VideoError(
                path,
                "unreadable container: frames without timestamps (a raw stream?); put it in a "
                "container first, e.g. ffmpeg -r FPS -i VIDEO -c copy VIDEO.mkv",
            )
        self._file_pts: list[int] = [pts for pts, *_ in packets]  # in decoding (file) order
        repeated = len(self._file_pts) - len(set(self._file_pts))
        if repeated:  # frames are found by their timestamps: repeats would return wrong frames
            raise VideoError(
                path,
                f"damaged: {repeated} frames repeat an earlier frame's timestamp (timestamps "
                "restart, as in recordings joined end to end)",
            )
        # where to seek for each packet: demuxers index decoding times (MPEG-TS seeks by them)
        self._seek_times = [pts if dts is None else dts for pts, dts, *_ in packets]
        self._position_of = {pts: position for position, pts in enumerate(self._file_pts)}
        self._keyframes = sorted({0, *(n for n, (_, _, key, *_) in enumerate(packets) if key)})
        self._display_pts = sorted(pts for pts, _, _, discarded, _ in packets if not discarded)
        durations = [duration for *_, duration in packets]
        super().__init__(path, len(self._display_pts), fps, _held(self._file_pts, durations, self._stream, fps))

    def frame_seconds(self) -> list[float]:
        if self._stream.time_base is None:
            return super().frame_seconds()
        first = self._display_pts[0]
        return [float((pts - first) * self._stream.time_base) for pts in self._display_pts]

    def _decode(self, indices: list[int]) -> torch.Tensor:
        wanted = {self._display_pts[index]: index for index in indices}
        frames: dict[int, np.ndarray] = {}
        try:
            for first, last in self._spans([self._position_of[pts] for pts in wanted]):
                self._decode_span(first, last, wanted, frames)
        except av.FFmpegError as error:
            raise VideoError(self.path, f"decode failed: {first_line(error)}") from error
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
                if self._size is None:
                    self._size = frame.height, frame.width
                height, width = self._size
                rgb = _own_reformatter().reformat(frame, format="rgb24", height=height, width=width)
                frames[index] = _upright(rgb.to_ndarray(), frame.rotation)

    def close(self) -> None:
        self._container.close()


def main_video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The video stream FFmpeg would play (av_find_best_stream), not a cover image or thumbnail
    stored as a one-frame stream before it."""
    return container.streams.best("video")


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


def _upright(rgb: np.ndarray, rotation: float) -> np.ndarray:
    """The frame as a player shows it. Phones store portrait video as sideways frames with a
    display rotation (counter-clockwise degrees, which FFmpeg's players and decord 0.6 apply).
    Mirroring display matrices (almost never used for video) are not applied."""
    turns = round(rotation / 90) % 4
    return np.rot90(rgb, turns) if turns else rgb


def _held(file_pts: list[int], durations: list[int | None], stream: av.video.stream.VideoStream, fps: float) -> Held:
    if not file_pts or stream.time_base is None:
        return Held(len(file_pts), len(file_pts) / fps)
    last = max(range(len(file_pts)), key=file_pts.__getitem__)
    time_base = float(stream.time_base)
    last_shown = durations[last] * time_base if durations[last] else 1 / fps
    first_time, last_time = min(file_pts) * time_base, file_pts[last] * time_base
    return Held.from_timestamps(len(file_pts), first_time, last_time, last_time + last_shown, fps)


def _timestamp(packet: av.Packet) -> int | None:
    """A packet's presentation time; AVI stores none for B-frame streams, only decoding times."""
    return packet.pts if packet.pts is not None else packet.dts
