"""Decoding returns exactly the requested frames and names the file and reason when it cannot."""

import av
import pytest
import torch

from msta_cli.core.data import decoding
from msta_cli.core.data.decoding import VideoError, open_video, resolve_backend
from msta_cli.core.errors import InputError, MstaError
from tests.helpers.videos import (
    codec_available,
    damage_avi,
    frame_indices_of,
    garble_packets,
    join_bytes,
    truncate,
    write_header_only,
    write_not_a_video,
    write_video,
    write_with_cover,
    write_zero_byte,
)

BACKENDS = ["pyav"] + (["decord"] if decoding.decord_available() else [])
SUFFIXES = [".mp4", ".avi"] + ([".webm"] if codec_available("libvpx-vp9") else [])
FRAMES = 40


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    return {suffix: write_video(root / f"clip{suffix}", FRAMES) for suffix in SUFFIXES}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_get_batch_returns_the_requested_frames(videos, backend, suffix):
    wanted = [39, 0, 17, 17, 5, 31, 8]
    with open_video(videos[suffix], backend) as reader:
        assert reader.num_frames == FRAMES
        assert reader.fps == pytest.approx(25)
        frames = reader.get_batch(wanted)
        assert frames.dtype == torch.uint8
        assert frames.shape == (len(wanted), 32, 64, 3)
        assert frame_indices_of(frames) == wanted
        # a later, earlier request seeks backwards
        assert frame_indices_of(reader.get_batch([2, 3])) == [2, 3]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_backends_agree(videos, suffix):
    if len(BACKENDS) < 2:
        pytest.skip("decord is not installed")
    wanted = list(range(0, FRAMES, 3))
    with open_video(videos[suffix], "decord") as a, open_video(videos[suffix], "pyav") as b:
        assert torch.equal(a.get_batch(wanted), b.get_batch(wanted))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_decode_failure_mid_file_is_a_video_error(tmp_path, backend):
    video = garble_packets(write_video(tmp_path / "v.mp4", 64, size=(64, 96), keyframe_interval=16), 24, 40)
    with open_video(video, backend) as reader:
        if backend == "pyav":  # decord's decoder thread reads ahead into the damage
            assert frame_indices_of(reader.get_batch([0, 5])) == [0, 5]
        with pytest.raises(VideoError, match="decode failed") as raised:
            reader.get_batch(range(reader.num_frames))
    assert raised.value.path == str(video)
    assert "[" not in raised.value.reason  # no error numbers or C++ source locations
    assert "Check failed" not in raised.value.reason  # decord's assertion, told as FFmpeg's message


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_opening_learns_the_header_without_decoding_frames(videos, suffix):
    """FFmpeg's probe would decode H.264 frames or a VP9 keyframe per open; msta's decodes none
    (a decoded frame would have told it the pixel format) and reads the same header."""
    path = videos[suffix]
    with decoding._open_container(path) as quick, av.open(str(path)) as probed:
        assert decoding._read_header(path, quick) == decoding._read_header(path, probed)
        assert probed.streams.video[0].codec_context.pix_fmt == "yuv420p"
        assert quick.streams.video[0].codec_context.pix_fmt is None


def test_a_header_without_the_frame_size_is_probed_again_with_a_decoder(tmp_path):
    """MP4 leaves an MPEG-4 Part 2 stream's frame size to the decoder."""
    path = write_video(tmp_path / "part2.mp4", 12, codec="mpeg4")
    with av.open(str(path), container_options=decoding._PROBE_WITHOUT_DECODER) as bare:
        assert bare.streams.video[0].codec_context.height == 0
    with decoding._open_container(path) as quick, av.open(str(path)) as probed:
        assert decoding._read_header(path, quick) == decoding._read_header(path, probed)
    with open_video(path) as reader:
        assert frame_indices_of(reader.get_batch([0, 7, 11])) == [0, 7, 11]


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_short_side_shrinks_on_decode_and_never_enlarges(videos, backend):
    with open_video(videos[".mp4"], backend, max_short_side=16) as reader:
        frames = reader.get_batch([3, 30])
    assert frames.shape == (2, 16, 32, 3)
    assert frame_indices_of(frames) == [3, 30]
    with open_video(videos[".mp4"], backend, max_short_side=48) as reader:
        assert reader.get_batch([3]).shape == (1, 32, 64, 3)


@pytest.mark.parametrize(("suffix", "codec"), [(".avi", "mpeg4"), (".ts", "libx264")])
def test_auto_decodes_b_frames_exactly_where_decord_does_not(tmp_path, suffix, codec):
    video = write_video(tmp_path / f"bframes{suffix}", 20, codec=codec, b_frames=2)
    wanted = [0, 1, 3, 9, 19, 14]
    with open_video(video) as reader:
        assert frame_indices_of(reader.get_batch(wanted)) == wanted
    if decoding.decord_available():  # why "auto" is not decord (AVI: decord issue 195)
        with open_video(video, "decord") as reader:
            assert frame_indices_of(reader.get_batch(wanted)) != wanted


def test_backend_choice(monkeypatch):
    with pytest.raises(InputError, match="unknown video backend"):
        resolve_backend("opencv")
    assert resolve_backend("auto") == "pyav"
    monkeypatch.setattr(decoding, "decord_available", lambda: True)
    assert resolve_backend("decord") == "decord"
    monkeypatch.setattr(decoding, "decord_available", lambda: False)
    with pytest.raises(InputError, match="not installed"):
        resolve_backend("decord")


def damaged(kind: str, path):
    """Write a broken video of `kind` at `path`."""
    if kind == "missing":
        return path
    if kind == "zero-byte":
        return write_zero_byte(path)
    if kind == "not-a-video":
        return write_not_a_video(path)
    if kind == "truncated":
        return truncate(write_video(path, 32), 0.5)
    if kind == "truncated-faststart":
        return truncate(write_video(path, 32, faststart=True), 0.8)
    return damage_avi(write_video(path, 32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("kind", "suffix", "reasons"),
    [
        ("missing", ".mp4", ("file not found",)),
        ("zero-byte", ".mp4", ("empty file",)),
        ("not-a-video", ".mp4", ("unreadable container",)),
        ("truncated", ".mp4", ("unreadable container",)),
        # decord gives up while opening with a C++ assertion; PyAV's checks then say why
        ("truncated-faststart", ".mp4", ("damaged: header declares 32 frames, file holds",)),
        ("damaged-avi", ".avi", ("damaged: header declares 32 frames, file holds",)),
    ],
)
def test_bad_videos_raise_video_error_with_path_and_reason(
    tmp_path, backend, kind, suffix, reasons
):
    path = damaged(kind, tmp_path / f"{kind}{suffix}")
    with pytest.raises(VideoError) as raised:
        with open_video(path, backend) as reader:
            reader.get_batch(range(reader.num_frames))
    error = raised.value
    assert isinstance(error, MstaError)
    assert error.path == str(path)
    assert error.reason.startswith(reasons)
    assert str(error) == f"{path}: {error.reason}"


@pytest.mark.skipif("decord" not in BACKENDS, reason="decord is not installed")
@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_decord_never_squashes_a_phone_video_it_shrinks(tmp_path, rotation):
    """decord 0.6 turns a rotated video upright but resizes it wrongly, so a sideways one keeps
    its size: upright, the same frames as PyAV's, only not shrunk."""
    rotated = write_video(tmp_path / "rotated.mp4", 6, size=(32, 64), display_rotation=rotation)
    with open_video(rotated, "pyav") as reference, open_video(rotated, "decord", max_short_side=16) as shrunk:
        expected, frames = reference.get_batch([0, 4]), shrunk.get_batch([0, 4])
    if rotation == 180:
        assert frames.shape[1:3] == (16, 32)
    else:
        assert frames.shape == expected.shape == (2, 64, 32, 3)
        assert (frames.int() - expected.int()).abs().float().mean() < 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_folder_named_like_a_video_is_not_a_file(tmp_path, backend):
    (tmp_path / "clip.mp4").mkdir()
    with pytest.raises(VideoError, match="not a file"):
        open_video(tmp_path / "clip.mp4", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("index", [-1, FRAMES])
def test_index_out_of_range(videos, backend, index):
    with open_video(videos[".mp4"], backend) as reader:
        with pytest.raises(VideoError, match=f"frame index {index} out of range"):
            reader.get_batch([0, index])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_file_without_frames_is_a_video_error(tmp_path, backend):
    with pytest.raises(VideoError) as raised:
        open_video(write_header_only(tmp_path / "empty.avi"), backend)
    assert raised.value.reason == "no frames" or backend == "decord"  # decord fails to open it first


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("suffix", [".mkv"] + ([".webm"] if codec_available("libvpx-vp9") else []))
def test_a_matroska_file_cut_short_is_damaged(tmp_path, backend, suffix):
    """MKV and WebM state a duration, not a frame count; an interrupted download keeps it."""
    whole = write_video(tmp_path / f"whole{suffix}", 100)
    with open_video(whole, backend) as reader:
        assert reader.num_frames == 100
    with pytest.raises(VideoError, match=r"damaged: header declares 4.00 s \(about 100 frames\), file holds \d+"):
        open_video(truncate(whole, 0.5), backend)


def test_a_matroska_file_with_a_longer_audio_track_is_not_damaged(tmp_path):
    path = tmp_path / "with_audio.mkv"
    with av.open(str(path), "w") as container:
        video, audio = container.add_stream("libx264", rate=25), container.add_stream("aac", rate=8000)
        video.height, video.width = 32, 64
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(torch.full((32, 64, 3), 9 * index, dtype=torch.uint8).numpy())
            container.mux(video.encode(frame))
        container.mux(video.encode())
        for second in range(2):  # 2 s of sound against 0.4 s of video
            samples = av.AudioFrame.from_ndarray(torch.zeros(1, 8000).numpy(), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 8000, second * 8000
            container.mux(audio.encode(samples))
        container.mux(audio.encode())
    with open_video(path) as reader:
        assert reader.num_frames == 10


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("suffix", [".mkv", ".avi"])
def test_short_and_variable_frame_rate_files_are_not_damaged(tmp_path, backend, suffix):
    """An AVI fills timestamp gaps with empty chunks that its header counts as frames."""
    ticks = [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 40, 41, 42, 43]
    with open_video(write_video(tmp_path / f"vfr{suffix}", len(ticks), frame_ticks=ticks), backend) as reader:
        assert frame_indices_of(reader.get_batch([0, 15])) == [0, 15]
    with open_video(write_video(tmp_path / f"short{suffix}", 3), backend) as reader:
        assert reader.num_frames == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_matroska_file_whose_last_frame_is_shown_for_long_is_not_damaged(tmp_path, backend):
    """Its duration (4.36 s) is the time its 10 frames cover, not 10 frames' worth at 25 fps."""
    with open_video(write_video(tmp_path / "still.mkv", 10, last_frame_seconds=4), backend) as reader:
        assert frame_indices_of(reader.get_batch([0, 9])) == [0, 9]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_main_video_stream_is_read_not_a_cover_image_before_it(tmp_path, backend):
    with open_video(write_with_cover(tmp_path / "cover.mkv", 16), backend) as reader:
        assert reader.num_frames == 16
        assert frame_indices_of(reader.get_batch([3, 12])) == [3, 12]


def test_frames_keep_one_size_when_the_stream_changes_its_size(tmp_path):
    """Joined recordings: the second part's frames are converted to the first part's size."""
    first = write_video(tmp_path / "first.ts", 8, size=(32, 64))
    second = write_video(tmp_path / "second.ts", 8, size=(48, 96), frame_ticks=list(range(10, 18)))
    with open_video(join_bytes([first, second], tmp_path / "joined.ts")) as reader:
        frames = reader.get_batch([2, 13])
    assert frames.shape == (2, 32, 64, 3)
    assert frame_indices_of(frames) == [2, 5]


def test_timestamps_that_restart_are_damage_not_wrong_frames(tmp_path):
    part = write_video(tmp_path / "part.ts", 8)
    with pytest.raises(VideoError, match="damaged: 8 frames repeat an earlier frame's timestamp"):
        open_video(join_bytes([part, part], tmp_path / "joined.ts"))


def test_a_decoder_failing_in_an_unforeseen_way_is_that_files_video_error(videos, monkeypatch):
    reader = open_video(videos[".mp4"])
    monkeypatch.setattr(reader, "_decode", lambda indices: [][0])
    with pytest.raises(VideoError, match="decode failed: IndexError: list index out of range"):
        reader.get_batch([0])
