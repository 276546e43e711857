"""Segment and dense sampling: in range, one frame per segment, deterministic test views."""

import bisect
import random

import pytest
import torch

from msta_cli.core.data import sampling

LENGTHS = [1, 3, 7, 8, 9, 31, 150, 301]


def non_decreasing(indices):
    return all(a <= b for a, b in zip(indices, indices[1:]))


@pytest.mark.parametrize("video_frames", LENGTHS)
def test_train_segments_one_frame_per_segment(video_frames):
    generator = random.Random(0)
    for _ in range(50):
        indices = sampling.train_segment_indices(video_frames, 8, generator)
        assert len(indices) == 8
        assert all(0 <= i < video_frames for i in indices)
        assert non_decreasing(indices)
        if video_frames >= 8:
            starts = [s * video_frames // 8 for s in range(8)]
            segments = [bisect.bisect_right(starts, i) - 1 for i in indices]
            assert segments == list(range(8))


def test_train_segments_cover_each_segment():
    generator = random.Random(1)
    seen = {i for _ in range(400) for i in sampling.train_segment_indices(80, 8, generator)}
    assert seen == set(range(80))


def test_short_video_repeats_frames():
    assert sampling.train_segment_indices(3, 8, random.Random(0)) == [0, 0, 0, 1, 1, 1, 2, 2]
    assert sampling.test_clip_indices(3, 8, 1) == [[0, 0, 0, 1, 1, 2, 2, 2]]
    assert sampling.dense_indices(3, 4, 8, 0) == [0, 0, 1, 2]


def test_seeded_reproducibility_with_either_generator():
    first = sampling.train_segment_indices(150, 8, random.Random(7))
    assert sampling.train_segment_indices(150, 8, random.Random(7)) == first
    as_torch = sampling.train_segment_indices(150, 8, torch.Generator().manual_seed(7))
    assert sampling.train_segment_indices(150, 8, torch.Generator().manual_seed(7)) == as_torch
    draws = {tuple(sampling.train_segment_indices(150, 8, random.Random(s))) for s in range(10)}
    assert len(draws) > 1


def test_test_clips_take_evenly_spaced_offsets_in_each_segment():
    # 80 frames, 8 segments of 10: 1 clip at offset 5, 2 clips at 2 and 7
    assert sampling.test_clip_indices(80, 8, 1) == [[5, 15, 25, 35, 45, 55, 65, 75]]
    assert sampling.test_clip_indices(80, 8, 2) == [
        [2, 12, 22, 32, 42, 52, 62, 72],
        [7, 17, 27, 37, 47, 57, 67, 77],
    ]


@pytest.mark.parametrize("video_frames", LENGTHS)
@pytest.mark.parametrize("clips", [1, 3, 10])
def test_test_clips_deterministic_and_in_range(video_frames, clips):
    views = sampling.test_clip_indices(video_frames, 8, clips)
    assert views == sampling.test_clip_indices(video_frames, 8, clips)
    assert len(views) == clips
    for indices in views:
        assert len(indices) == 8
        assert all(0 <= i < video_frames for i in indices)
        assert non_decreasing(indices)


def test_dense_clip():
    assert sampling.dense_indices(100, 4, 8, 10) == [10, 18, 26, 34]
    # too short for the span: spread over the video
    assert sampling.dense_indices(20, 4, 8, 0) == [0, 5, 10, 15]
    with pytest.raises(ValueError):
        sampling.dense_indices(100, 4, 8, 80)


@pytest.mark.parametrize("video_frames", LENGTHS)
def test_dense_train_and_test_in_range(video_frames):
    generator = random.Random(3)
    clips = [sampling.dense_train_indices(video_frames, 8, 4, generator) for _ in range(20)]
    clips += sampling.dense_test_indices(video_frames, 8, 4, 3)
    for indices in clips:
        assert len(indices) == 8
        assert all(0 <= i < video_frames for i in indices)
        assert non_decreasing(indices)


def test_dense_test_starts_evenly_spaced():
    # span 29 in 150 frames: starts 0..121, 2 clips at 1/4 and 3/4 of that range
    starts = [clip[0] for clip in sampling.dense_test_indices(150, 8, 4, 2)]
    assert starts == [30, 91]
