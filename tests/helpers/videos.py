"""Tiny synthetic videos for tests: every frame encodes its own index, plus damaged variants.

Each frame shows its index as a row of black/white columns (a binary number, most
significant bit on the left), so a test can tell which frame a decoder returned even
after lossy coding, resizing or colour conversion. 8 columns cover 256 frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import ArrayLike

BITS = 8

# Suffix -> encoders to try in order; the first one this PyAV build has is used.
_CODECS = {
    ".mp4": ("libx264", "h264", "mpeg4"),
    ".mkv": ("libx264", "h264", "mpeg4"),
    ".avi": ("mpeg4", "mjpeg"),
    ".webm": ("libvpx-vp9", "libvpx"),
    ".ts": ("libx264", "h264", "mpeg2video"),
}
_PIXEL_FORMATS = {"mjpeg": "yuvj420p"}
_QUALITY = {
    "libx264": {"crf": "12"},
    "h264": {"crf": "12"},
    "libvpx-vp9": {"crf": "10", "b": "0"},
    "libvpx": {"crf": "4", "b": "1M"},
}


def codec_available(name: str) -> bool:
    """Whether this PyAV build can encode with `name` (use it to skip codec-specific tests)."""
    try:
        av.codec.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    return True


def frame_pattern(index: int, size: tuple[int, int]) -> np.ndarray:
    """The uint8 (H, W, 3) picture that encodes `index`."""
    if not 0 <= index < 2**BITS:
        raise ValueError(f"frame index {index} does not fit in {BITS} bits")
    height, width = size
    bits = [(index >> (BITS - 1 - b)) & 1 for b in range(BITS)]
    row = np.repeat(np.array(bits, dtype=np.uint8) * 255, -(-width // BITS))[:width]
    return np.broadcast_to(row[None, :, None], (height, width, 3)).copy()


def frame_index_of(frame: ArrayLike) -> int:
    """Read back the index from a decoded frame: uint8 (H, W, 3) numpy array or torch tensor."""
    pixels = np.asarray(frame, dtype=np.float32)
    height, width = pixels.shape[:2]
    band = pixels[height // 4 : 3 * height // 4].mean(axis=(0, 2))
    index = 0
    for b in range(BITS):
        lo, hi = b * width / BITS, (b + 1) * width / BITS
        quarter = (hi - lo) / 4
        centre = band[int(lo + quarter) : max(int(hi - quarter), int(lo + quarter) + 1)]
        index = (index << 1) | int(centre.mean() > 127)
    return index


def frame_indices_of(frames: Sequence[ArrayLike]) -> list[int]:
    """`frame_index_of` for each decoded frame of a clip."""
    return [frame_index_of(frame) for frame in frames]


def write_video(
    path: str | Path,
    num_frames: int = 16,
    size: tuple[int, int] = (32, 64),
    fps: int = 25,
    codec: str | None = None,
    keyframe_interval: int = 8,
    faststart: bool = False,
    b_frames: int | None = None,
    encoder_options: dict[str, str] | None = None,
    frame_ticks: list[int] | None = None,
    display_rotation: int = 0,
    last_frame_seconds: float | None = None,
) -> Path:
    """Encode `num_frames` index-coded frames of `size` (h, w); the codec follows the suffix.

    The default width is 64 because decord 0.6 returns corrupt buffers for some tiny widths
    (16, 24, 48, 72). `keyframe_interval` is small by default so decoders must really seek; `faststart`
    moves an mp4's index to the front, so a truncated copy still opens (mid-file damage).
    `b_frames` sets the encoder's maximum run of B-frames (None keeps its default);
    `encoder_options` are added to the codec's options (e.g. {"x264-params": "open-gop=1"}).
    `frame_ticks` gives each frame's presentation time in 1/fps units (default 0, 1, 2, ...);
    an AVI muxer fills gaps with empty chunks that its header counts as frames.
    `display_rotation` stores a display matrix turning the frames counter-clockwise by that many
    degrees when shown, as phones record portrait video. `last_frame_seconds` shows the last
    frame that long (a slideshow's or screen recording's still), where the container stores it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if codec is None:
        candidates = _CODECS.get(path.suffix.lower())
        if candidates is None:
            raise ValueError(f"no default codec for suffix {path.suffix!r}")
        codec = next((c for c in candidates if codec_available(c)), None)
        if codec is None:
            raise RuntimeError(f"no encoder for {path.suffix} in this PyAV build: {candidates}")
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.height, stream.width = size
        stream.pix_fmt = _PIXEL_FORMATS.get(codec, "yuv420p")
        stream.gop_size = keyframe_interval
        stream.bit_rate = 4_000_000
        stream.options = {**_QUALITY.get(codec, {}), **(encoder_options or {})}
        if b_frames is not None:
            stream.codec_context.max_b_frames = b_frames
        if display_rotation:
            stream.set_display_rotation(display_rotation)
        packets = []
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(index, size), format="rgb24")
            if frame_ticks is not None:
                frame.pts, frame.time_base = frame_ticks[index], Fraction(1, fps)
            packets += stream.encode(frame)
        packets += stream.encode()
        if last_frame_seconds is not None:
            last = max(packets, key=lambda packet: packet.pts)
            last.duration = int(Fraction(last_frame_seconds) / last.time_base)
        container.mux(packets)
    return path


def write_zero_byte(path: str | Path) -> Path:
    """An empty file with a video suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_not_a_video(path: str | Path) -> Path:
    """A text file wearing a video suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not a video\n" * 20)
    return path


def truncate(path: str | Path, keep_fraction: float) -> Path:
    """Cut the file to its first `keep_fraction` of bytes, in place (an interrupted download)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def damage_avi(path: str | Path, keep_fraction: float = 0.5) -> Path:
    """Cut an AVI inside its `movi` chunk, in place: the header still claims every frame.

    The index (`idx1`) after `movi` goes too, so demuxers fall back to the header's frame
    count and only find out while decoding that the frames are missing.
    """
    path = Path(path)
    data = path.read_bytes()
    movi = data.find(b"movi")
    if movi < 0:
        raise ValueError(f"{path} has no movi chunk; is it an AVI?")
    movi_size = int.from_bytes(data[movi - 4 : movi], "little")
    path.write_bytes(data[: movi + 4 + int(movi_size * keep_fraction)])
    return path


def cut_by_stream_copy(source: str | Path, path: str | Path, first_frame: int) -> Path:
    """What `ffmpeg -ss T -i SOURCE -c copy PATH` writes, for a SOURCE without B-frames: packets
    from the keyframe at or before `first_frame`, timed so that `first_frame` is shown first; the MP4 muxer's edit list marks
    the frames before it as discarded (decoded for reference, never shown)."""
    with av.open(str(source)) as container, av.open(str(path), "w") as output:
        stream = container.streams.video[0]
        packets = [packet for packet in container.demux(stream) if packet.size]
        keyframe = max(n for n, packet in enumerate(packets[: first_frame + 1]) if packet.is_keyframe)
        shift = packets[first_frame].pts - packets[0].pts
        copied = output.add_stream_from_template(stream)
        for packet in packets[keyframe:]:
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = copied
            output.mux(packet)
    return Path(path)


def garble_packets(path: str | Path, first: int, last: int, seed: int = 0) -> Path:
    """Overwrite the last three quarters of packets `first` to `last` with random bytes, in
    place: the container stays intact and decoding fails mid-file."""
    path = Path(path)
    with av.open(str(path)) as container:
        spans = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for position, size in spans[first : last + 1]:
        start = position + size // 4
        data[start : position + size] = rng.integers(0, 256, position + size - start, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def write_header_only(path: str | Path, size: tuple[int, int] = (32, 64)) -> Path:
    """An AVI whose header states a stream and a frame size but which holds no frame."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(25))
        stream.height, stream.width = size
        container.start_encoding()
    return path


def join_bytes(parts: Sequence[str | Path], path: str | Path) -> Path:
    """The parts' bytes one after another, as `cat` joins MPEG-TS recordings."""
    path = Path(path)
    path.write_bytes(b"".join(Path(part).read_bytes() for part in parts))
    return path


def write_with_cover(path: str | Path, num_frames: int = 16, size: tuple[int, int] = (32, 64)) -> Path:
    """An MKV whose first video stream is a one-frame still (a cover image) and whose second is
    the video, `num_frames` index-coded frames."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        cover = container.add_stream("mjpeg", rate=Fraction(1))
        video = container.add_stream("libx264", rate=Fraction(25))
        for stream, pix_fmt in ((cover, "yuvj420p"), (video, "yuv420p")):
            stream.height, stream.width = size
            stream.pix_fmt = pix_fmt
        still = av.VideoFrame.from_ndarray(np.full((*size, 3), 128, np.uint8), format="rgb24")
        container.mux(cover.encode(still))
        container.mux(cover.encode())
        for index in range(num_frames):
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame_pattern(index, size), format="rgb24")))
        container.mux(video.encode())
    return path
