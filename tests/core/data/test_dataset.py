"""The dataset and loader deliver good clips and list bad videos with their reasons."""

import pandas as pd
import pytest
import torch

from msta_cli.core.data import sampling
from msta_cli.core.data.dataset import (
    Clip,
    VideoClipDataset,
    VideoFailure,
    collate_clips,
    make_loader,
)
from msta_cli.core.errors import InputError
from tests.helpers.videos import frame_indices_of, write_video, write_zero_byte


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "a/small.mp4", 24, size=(32, 64))
    write_video(root / "a/tall.mp4", 40, size=(48, 64))
    write_video(root / "b/clip.avi", 16, size=(32, 64))
    write_zero_byte(root / "b/empty.mp4")
    return root


SPLIT = pd.DataFrame(
    {
        "path": ["a/small.mp4", "b/missing.mp4", "a/tall.mp4", "b/empty.mp4", "b/clip.avi"],
        "label": [0, 1, 1, 2, 2],
    }
)


def test_train_item_is_one_frame_per_segment(root):
    item = VideoClipDataset(SPLIT, root, num_frames=8)[2]
    assert isinstance(item, Clip)
    assert (item.label, item.index, item.path) == (1, 2, "a/tall.mp4")
    assert item.video.shape == (8, 48, 64, 3)
    assert item.video.dtype == torch.uint8
    assert [i // 5 for i in frame_indices_of(item.video)] == list(range(8))  # 8 segments of 5


def test_bad_videos_become_failure_records(root):
    dataset = VideoClipDataset(SPLIT, root, num_frames=8)
    assert dataset[1] == VideoFailure("b/missing.mp4", "file not found")
    assert dataset[3] == VideoFailure("b/empty.mp4", "empty file (0 bytes)")


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_batches_the_good_clips_and_lists_failures(root, workers):
    dataset = VideoClipDataset(SPLIT, root, 8)
    loader = make_loader(dataset, batch_size=5, workers=workers)
    (batch,) = list(loader)
    assert len(batch) == 3
    assert batch.paths == ["a/small.mp4", "a/tall.mp4", "b/clip.avi"]
    assert batch.labels.tolist() == [0, 1, 2]
    assert batch.indices.tolist() == [0, 2, 4]
    assert sorted(batch.failures) == [
        ("b/empty.mp4", "empty file (0 bytes)"),
        ("b/missing.mp4", "file not found"),
    ]
    # mixed resolutions are zero-padded; sizes says where each clip ends
    assert batch.videos.shape == (3, 8, 48, 64, 3)
    assert batch.sizes.tolist() == [[32, 64], [48, 64], [32, 64]]
    assert batch.videos[0, :, 32:].eq(0).all()
    assert [i // 5 for i in frame_indices_of(batch.videos[1])] == list(range(8))


@pytest.mark.parametrize("start_method", ["fork", "spawn"])  # spawn: macOS's and Windows' default
def test_workers_kept_between_epochs_draw_each_epochs_frames(root, start_method):
    dataset = VideoClipDataset(SPLIT[SPLIT.path == "a/tall.mp4"], root, 8)  # 40 frames: segments of 5
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=1, num_workers=1, collate_fn=collate_clips, persistent_workers=True,
        multiprocessing_context=start_method,
    )
    drawn, worker_ids = [], set()
    for epoch in range(4):
        dataset.set_epoch(epoch)
        (batch,) = list(loader)
        worker_ids.add(tuple(worker.pid for worker in loader._iterator._workers))
        drawn.append(frame_indices_of(batch.videos[0]))
        assert drawn[-1] == dataset.frame_indices(40, 0)[0]
    assert len(worker_ids) == 1  # the same worker process every epoch
    assert len({tuple(frames) for frames in drawn}) > 1


def _collated_in_shared_memory(items) -> bool:
    return collate_clips(items).videos.is_shared()


@pytest.mark.parametrize("paths", [["a/small.mp4", "b/clip.avi"], ["a/small.mp4", "a/tall.mp4"]])
def test_workers_collate_into_shared_memory(root, paths):
    """Sending a batch out of a worker then costs no copy (padded batches included)."""
    dataset = VideoClipDataset(SPLIT[SPLIT.path.isin(paths)], root, 8)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=2, num_workers=1, collate_fn=_collated_in_shared_memory
    )
    assert list(loader) == [True]


def test_test_mode_gives_deterministic_clips(root):
    dataset = VideoClipDataset(SPLIT, root, num_frames=4, mode="test", clips=3)
    item = dataset[2]
    assert item.video.shape == (3, 4, 48, 64, 3)
    assert [frame_indices_of(clip) for clip in item.video] == sampling.test_clip_indices(40, 4, 3)
    assert torch.equal(dataset[2].video, item.video)


def test_max_short_side_shrinks_on_decode_and_never_enlarges(root):
    assert VideoClipDataset(SPLIT, root, num_frames=4, max_short_side=32)[2].video.shape == (4, 32, 43, 3)
    assert VideoClipDataset(SPLIT, root, num_frames=4, max_short_side=64)[2].video.shape == (4, 48, 64, 3)


def test_dense_sampling(root):
    dataset = VideoClipDataset(SPLIT, root, num_frames=4, sampling="dense", stride=3)
    frames = frame_indices_of(dataset[2].video)
    assert [b - a for a, b in zip(frames, frames[1:])] == [3, 3, 3]


def test_train_positions_depend_on_seed_epoch_and_index_only():
    dataset = VideoClipDataset(SPLIT, "unused", num_frames=8, seed=1)
    first = dataset.frame_indices(300, 0)
    assert VideoClipDataset(SPLIT, "unused", num_frames=8, seed=1).frame_indices(300, 0) == first
    assert dataset.frame_indices(300, 1) != first
    dataset.set_epoch(1)
    assert dataset.frame_indices(300, 0) != first
    other_seed = VideoClipDataset(SPLIT, "unused", num_frames=8, seed=2)
    assert other_seed.frame_indices(300, 0) != first


def test_loader_follows_the_sampler(root):
    dataset = VideoClipDataset(SPLIT, root, 4)
    loader = make_loader(dataset, batch_size=1, workers=0, sampler=[4, 0])
    assert [batch.indices.tolist() for batch in loader] == [[4], [0]]


def test_batch_of_only_failures_is_empty():
    batch = collate_clips([VideoFailure("x.mp4", "file not found")])
    assert len(batch) == 0
    assert batch.failures == [("x.mp4", "file not found")]


def test_test_loader_never_drops_videos(root):
    dataset = VideoClipDataset(SPLIT, root, 4, mode="test")
    with pytest.raises(ValueError, match="drop_last"):
        make_loader(dataset, batch_size=2, workers=0, drop_last=True)
    loader = make_loader(dataset, batch_size=2, workers=0)
    assert not loader.pin_memory or torch.cuda.is_available()
    seen = [(p, "ok") for batch in loader for p in batch.paths]
    seen += [failure for batch in loader for failure in batch.failures]
    assert len(seen) == len(SPLIT)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="mode"):
        VideoClipDataset(SPLIT, "unused", 8, mode="val")
    with pytest.raises(ValueError, match="sampling"):
        VideoClipDataset(SPLIT, "unused", 8, sampling="uniform")
    with pytest.raises(ValueError, match="clips"):
        VideoClipDataset(SPLIT, "unused", 8, mode="train", clips=2)


def test_an_unknown_backend_is_refused_before_any_video_is_read():
    with pytest.raises(InputError, match="unknown video backend 'opencv'; choose one of auto, decord, pyav"):
        VideoClipDataset(SPLIT, "unused", 8, backend="opencv")
