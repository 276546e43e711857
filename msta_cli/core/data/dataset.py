"""A torch Dataset of sampled clips that reports bad videos instead of stopping training.

Items stay uint8 and are only shrunk on decode (`max_short_side`); augmentation and float
conversion happen later on the training device (see transforms.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from msta_cli.core.data import sampling
from msta_cli.core.data.decoding import VideoError, open_video, resolve_backend
from msta_cli.core.data.sampling import SAMPLINGS, ClipSampling

MODES = ("train", "test")


class VideoFailure(NamedTuple):
    """A video that gave no clip: its path as listed in the split, and why."""

    path: str
    reason: str


@dataclass
class Clip:
    """One decoded sample: uint8 (T, H, W, 3) in train mode, (clips, T, H, W, 3) in test mode."""

    video: torch.Tensor
    label: int
    index: int
    path: str


@dataclass
class ClipBatch:
    """The good clips of a batch, stacked, and the failures that were left out.

    Clips of different resolutions are zero-padded at the bottom and right to the largest
    one; `sizes` (B, 2) then holds each clip's real (height, width) for the transforms, and
    is None when every clip has the same size. Check `len(batch)`: every video of a batch
    can fail, and then `videos` is empty.
    """

    videos: torch.Tensor
    sizes: torch.Tensor | None
    labels: torch.Tensor
    indices: torch.Tensor
    paths: list[str]
    failures: list[VideoFailure]

    def __len__(self) -> int:
        return len(self.paths)

    def pin_memory(self) -> ClipBatch:
        """Called by DataLoader(pin_memory=True), which cannot pin a custom type by itself."""
        self.videos = self.videos.pin_memory()
        self.labels = self.labels.pin_memory()  # so that copying them to the GPU need not wait
        return self


class VideoClipDataset(Dataset):
    """Clips of the videos in `split` (columns `path`, `label`; see lists.read_split).

    `mode="train"` draws one clip per video at random positions; `mode="test"` takes `clips`
    deterministic clips. `sampling` is "segment" (TSN, the MSTA recipe) or "dense" (frames
    `stride` apart). Training positions come from a generator seeded with (seed, epoch,
    index), so a sample's frames do not depend on which worker loads it; call `set_epoch`
    before each epoch. `backend` (see decoding.BACKENDS) is checked here, so an unknown or
    uninstalled one fails at once rather than in every data-loader worker.
    """

    def __init__(
        self,
        split: pd.DataFrame,
        video_root: str | Path,
        num_frames: int,
        mode: str = "train",
        clips: int = 1,
        sampling: str = "segment",
        stride: int = 8,
        backend: str = "auto",
        seed: int = 0,
        max_short_side: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if mode == "train" and clips != 1:
            raise ValueError("training draws one clip per video; clips > 1 is for mode='test'")
        self.paths = split["path"].tolist()
        self.labels = split["label"].tolist()
        self.video_root = Path(video_root)
        self.num_frames = num_frames
        self.mode = mode
        self.clips = clips
        self.sampling = sampling
        self.stride = stride
        self.backend = resolve_backend(backend)
        self.seed = seed
        self.max_short_side = max_short_side
        # Persistent data-loader workers keep the copy of the dataset they started with, so
        # the epoch lives in shared memory, where set_epoch reaches them.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Training positions of the next samples read, in this process and in its workers."""
        self._epoch.fill_(epoch)

    def __getitem__(self, index: int | None) -> Clip | VideoFailure | None:
        """Sample `index`'s clip(s); None for a sampler's padding slot (sharding.ShardedSampler)."""
        if index is None:
            return None
        path = self.paths[index]
        try:
            with open_video(self.video_root / path, self.backend, 1, self.max_short_side) as reader:
                positions = self.frame_indices(reader.num_frames, index)
                frames = reader.get_batch([i for clip in positions for i in clip])
        except VideoError as error:
            return VideoFailure(path, error.reason)
        if self.mode == "train":
            video = frames
        else:
            video = frames.unflatten(0, (self.clips, self.num_frames))
        return Clip(video, self.labels[index], index, path)

    def frame_indices(self, video_frames: int, index: int) -> list[list[int]]:
        """The frame positions of sample `index`'s clips (one clip in train mode)."""
        length = self.num_frames
        if self.mode == "test":
            return ClipSampling(length, self.sampling, self.stride).test_indices(video_frames, self.clips)
        generator = random.Random(f"{self.seed}:{self.epoch}:{index}")
        if self.sampling == "segment":
            return [sampling.train_segment_indices(video_frames, length, generator)]
        return [sampling.dense_train_indices(video_frames, length, self.stride, generator)]


def collate_clips(items: list[Clip | VideoFailure | None]) -> ClipBatch:
    """Stack the good clips (zero-padding mixed resolutions) and list the failures; padding
    slots (None) hold nothing."""
    clips = [item for item in items if isinstance(item, Clip)]
    failures = [item for item in items if isinstance(item, VideoFailure)]
    if not clips:
        empty = torch.empty(0, dtype=torch.long)
        return ClipBatch(torch.empty(0, dtype=torch.uint8), None, empty, empty, [], failures)
    shapes = [clip.video.shape[-3:-1] for clip in clips]
    height = max(h for h, _ in shapes)
    width = max(w for _, w in shapes)
    same_size = all(shape == shapes[0] for shape in shapes)
    return ClipBatch(
        # In a worker default_collate stacks straight into shared memory, so the batch reaches
        # the main process without another copy (moving a batch there afterwards costs about
        # 1.2 ms per 8x240x320 clip, timed ad hoc).
        videos=default_collate([_padded(clip.video, height, width) for clip in clips]),
        sizes=None if same_size else torch.tensor([list(shape) for shape in shapes]),
        labels=torch.tensor([clip.label for clip in clips]),
        indices=torch.tensor([clip.index for clip in clips]),
        paths=[clip.path for clip in clips],
        failures=failures,
    )


def _padded(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., h, w, 3) frames zero-padded at the bottom and right to (height, width)."""
    pad_height, pad_width = height - video.shape[-3], width - video.shape[-2]
    if not pad_height and not pad_width:
        return video
    return functional.pad(video, (0, 0, 0, pad_width, 0, pad_height))


def make_loader(
    dataset: VideoClipDataset,
    batch_size: int,
    workers: int,
    sampler: Sampler[int] | None = None,
    pin_memory: bool | None = None,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    persistent_workers: bool = False,
) -> DataLoader:
    """A DataLoader of ClipBatch whose uint8 videos arrive pinned when CUDA is available.

    `sampler` decides the order (in order when None); it and the dataset both need
    `set_epoch` before each epoch. Test mode never drops the last batch, so every test video
    is scored once. `generator` seeds the workers' base seed; give one so starting an epoch's
    iterator does not draw from torch's global RNG (exact resume). `persistent_workers` keeps
    the workers from one epoch to the next, for a loader iterated many times (training):
    starting them again costs every epoch a fork per worker.
    """
    if drop_last and dataset.mode == "test":
        raise ValueError("drop_last would skip test videos; every test video must be scored")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_clips,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=drop_last,
        generator=generator,
        persistent_workers=persistent_workers and workers > 0,
    )
