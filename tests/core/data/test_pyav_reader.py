"""msta's sparse PyAV reader returns what decoding every frame returns, in every stream layout."""

import multiprocessing
import random
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import pytest
import torch

from msta_cli.core.data.decoding import VideoError, open_video
from tests.helpers.videos import cut_by_stream_copy, frame_index_of, frame_indices_of, write_video


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("videos") / "clip.mp4", 40)


def _decode_in_child(path, queue) -> None:
    with open_video(path) as reader:
        queue.put(frame_indices_of(reader.get_batch([0, 5, 30])))


def test_forked_workers_decode_after_the_parent_has_decoded(mp4):
    """The colour converter is reused within a process; a forked child must make its own."""
    with open_video(mp4) as reader:
        reader.get_batch([1, 2])
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_decode_in_child, args=(mp4, queue)) for _ in range(2)]
    for child in children:
        child.start()
    try:
        results = [queue.get(timeout=60) for _ in children]
    finally:
        for child in children:
            child.join(timeout=10)
            child.kill()
    assert results == [[0, 5, 30], [0, 5, 30]]


def test_threads_decode_side_by_side(mp4):
    def decode(start: int) -> list[int]:
        with open_video(mp4) as reader:
            return [frame_indices_of(reader.get_batch([start, start + 1]))[0] for _ in range(20)]

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(decode, [0, 10, 20, 30])) == [[start] * 20 for start in (0, 10, 20, 30)]


STREAM_STRUCTURES = {  # name: (suffix, encoder, write_video options)
    "H.264 closed GOPs, B-pyramid": (
        ".mp4", "libx264", {"encoder_options": {"x264-params": "keyint=12:bframes=3:b-pyramid=normal"}}
    ),
    "H.264 open GOPs (leading B-frames)": (
        ".mp4", "libx264",
        {"encoder_options": {"x264-params": "keyint=12:min-keyint=12:bframes=3:open-gop=1:scenecut=0"}},
    ),
    "H.264 one keyframe": (".mp4", "libx264", {"encoder_options": {"x264-params": "keyint=250:bframes=3"}}),
    # no index: seeking searches timestamps and may land off the keyframe
    "H.264 in MPEG-TS": (".ts", "libx264", {"b_frames": 2, "keyframe_interval": 10}),
    # as UCF101 and HMDB51 ship: B-frames after a keyframe in the file are shown before it
    "MPEG-4 Part 2 open GOPs in AVI": (".avi", "mpeg4", {"b_frames": 2, "keyframe_interval": 10}),
}


@pytest.mark.parametrize("structure", STREAM_STRUCTURES)
def test_pyav_sparse_decoding_is_bit_identical_to_decoding_every_frame(tmp_path, structure):
    """The PyAV reader skips frames nothing wanted depends on; what it returns must not change."""
    frames = 60
    suffix, codec, options = STREAM_STRUCTURES[structure]
    video = write_video(tmp_path / f"v{suffix}", frames, codec=codec, **options)
    with av.open(str(video)) as container:
        every = torch.from_numpy(
            np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
        )
    assert frame_indices_of(every) == list(range(frames))
    rng = random.Random(0)
    requests = [[index] for index in reversed(range(frames))] + [
        sorted(rng.sample(range(frames), 8)) for _ in range(30)
    ]
    with open_video(video, "pyav") as reader:
        assert reader.num_frames == frames
        for wanted in requests:
            assert torch.equal(reader.get_batch(wanted), every[wanted]), wanted


def test_frames_an_mp4_edit_list_hides_are_not_shown(tmp_path):
    """A stream copy cut at frame 30 keeps frames 20-29 for reference, marked discarded."""
    source = write_video(tmp_path / "source.mp4", 80, keyframe_interval=20, b_frames=0)
    video = cut_by_stream_copy(source, tmp_path / "cut.mp4", first_frame=30)
    with av.open(str(video)) as container:  # what a player shows
        shown = [frame_index_of(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    assert shown == list(range(30, 80))
    with open_video(video, "pyav") as reader:
        assert reader.num_frames == 50
        assert frame_indices_of(reader.get_batch([0, 1, 9, 10, 49])) == [30, 31, 39, 40, 79]


def test_avi_gaps_filled_with_empty_chunks_are_not_damage(tmp_path):
    """The AVI muxer writes an empty chunk for each missing frame time; the header counts them."""
    ticks = [*range(6), *range(8, 22)]  # two frame times missing after frame 5
    video = write_video(tmp_path / "gaps.avi", 20, b_frames=0, frame_ticks=ticks)
    with av.open(str(video)) as container:
        assert container.streams.video[0].frames == 22
    with open_video(video, "pyav") as reader:
        assert reader.num_frames == 20
        assert frame_indices_of(reader.get_batch([0, 5, 6, 19])) == [0, 5, 6, 19]


def test_a_raw_stream_without_timestamps_is_a_video_error(tmp_path):
    video = tmp_path / "raw.h264"
    with av.open(str(write_video(tmp_path / "v.mp4", 20))) as source, av.open(str(video), "w", format="h264") as raw:
        copied = raw.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.size:
                packet.stream = copied
                raw.mux(packet)
    with pytest.raises(VideoError, match="without timestamps"):
        open_video(video, "pyav")


@pytest.mark.parametrize(("rotation", "max_short_side"), [(90, None), (-90, None), (180, None), (90, 16)])
def test_frames_come_upright_as_a_player_shows_them(tmp_path, rotation, max_short_side):
    """Phones store portrait video as sideways frames plus a display rotation; FFmpeg's players
    turn each frame counter-clockwise by it (torch.rot90's direction), and so does the reader."""
    stored = write_video(tmp_path / "stored.mp4", 6, size=(32, 64))
    rotated = write_video(tmp_path / "rotated.mp4", 6, size=(32, 64), display_rotation=rotation)
    with open_video(stored, max_short_side=max_short_side) as plain, open_video(rotated, max_short_side=max_short_side) as turned:
        expected, frames = plain.get_batch([0, 4]), turned.get_batch([0, 4])
    assert torch.equal(frames, torch.rot90(expected, rotation // 90, dims=(1, 2)))
    assert frames.shape[1:3] == ((32, 64) if rotation == 180 else (64, 32)) if max_short_side is None else (32, 16)


def test_frame_seconds_are_the_frames_timestamps_of_a_variable_rate_video(tmp_path):
    ticks = [0, 1, 2, 12, 13, 14]  # 1/25 s apart, then a 0.4 s gap, as a phone recording slows down
    path = write_video(tmp_path / "vfr.mp4", num_frames=len(ticks), frame_ticks=ticks, b_frames=0)
    with open_video(path) as reader:
        assert reader.frame_seconds() == pytest.approx([tick / 25 for tick in ticks])
    with open_video(write_video(tmp_path / "cfr.mp4", num_frames=6), backend="decord") as reader:
        assert reader.frame_seconds() == pytest.approx([index / 25 for index in range(6)])
