"""Clip augmentation and test views, run on whatever device the decoded uint8 batch lives on.

Loaders hand over uint8 (B, T, H, W, 3) frames; these transforms crop and resize while the
pixels are still uint8 and only then convert to float, so the float work happens on the
training device, not in data-loader workers.

Randomness: every draw comes from torch's default CPU generator, as in torchvision's v2
transforms (which take no generator argument); call `torch.manual_seed` to reproduce a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as F

from msta_cli.core.data import colour

# TSN's "more_fix_crop" positions as (left, top) in quarters of the free space around a crop.
_CROP_GRID = (
    (0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3),
    (3, 3),
)


def _valid_sizes(videos: torch.Tensor, sizes: torch.Tensor | None, dims: int) -> list[list[int]]:
    """Each video's (height, width) inside a zero-padded batch (all of it without `sizes`)."""
    if videos.dtype != torch.uint8 or videos.dim() != dims or videos.shape[-1] != 3:
        raise ValueError(f"expected uint8 videos with {dims} dims ending in 3 channels, "
                         f"got {videos.dtype} {tuple(videos.shape)}")
    if sizes is None:
        return [list(videos.shape[-3:-1])] * videos.shape[0]
    return sizes.tolist()


def _statistics(mean: Sequence[float], std: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """(2, 3, 1, 1) mean and std on `like`'s device.

    Not F.normalize: its copy of mean and std to the GPU blocks, and would wait for every
    kernel queued before it, the previous training step's included, so the next batch's
    augmentation could not be queued while that step runs. Here the copy is from pinned memory
    and does not block.
    """
    statistics = torch.tensor([list(mean), list(std)], dtype=torch.float32)
    if like.is_cuda:
        statistics = statistics.pin_memory().to(like.device, non_blocking=True)
    return statistics.view(2, 3, 1, 1)


@dataclass
class TrainTransform:
    """TSN training augmentation with one random draw per clip, shared by all its frames.

    Multi-scale crop: crop height and width are each a `scales` fraction of the frame's short
    side (their scale indices at most one apart, so aspect ratios stay near square), placed at
    one of TSN's 13 fixed positions, then resized to `size`. TSN first resizes the short side
    to 256; cropping fractions of the short side makes that step a no-op, so the decoder's
    `max_short_side` (see VideoClipDataset), which only shrinks larger videos, is the only
    resize before the crop. Then horizontal
    flip, colour jitter (brightness, contrast, saturation, hue strengths in `jitter`),
    grayscale, and normalisation with the backbone's `mean` and `std`.
    """

    mean: Sequence[float]
    std: Sequence[float]
    size: int = 224
    scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    jitter: Sequence[float] = (0.4, 0.4, 0.2, 0.1)
    grayscale_p: float = 0.2

    def __call__(self, videos: torch.Tensor, sizes: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) -> normalised float (B, T, 3, size, size).

        `sizes` (B, 2) gives each clip's real (height, width) when the batch is zero-padded.
        """
        valid = _valid_sizes(videos, sizes, 5)
        draws = colour.draw(len(videos), self.flip_p, self.jitter_p, self.jitter, self.grayscale_p)
        mean, std = _statistics(self.mean, self.std, videos)
        # Each clip is normalised into its place in the batch while it is still in the CPU's
        # cache: stacking the clips and normalising the batch took 2.7x as long on a CPU.
        augmented = videos.new_empty((len(videos), videos.shape[1], 3, self.size, self.size), dtype=torch.float32)
        for clip, (height, width), choices, out in zip(videos, valid, draws, augmented):
            frames = clip[:, :height, :width].permute(0, 3, 1, 2)
            top, left, crop_h, crop_w = self._crop_box(height, width)
            # contiguous: the resize returns channels-last strides, on which each float step
            # after it runs 2-5x slower on a CPU
            frames = F.resized_crop(frames, top, left, crop_h, crop_w, [self.size, self.size]).contiguous()
            frames = colour.augment(F.to_dtype(frames, torch.float32, scale=True), choices, self.jitter)
            torch.sub(frames, mean, out=out).div_(std)
        return augmented

    def _crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """TSN's MultiScaleCrop box; torchvision's RandomResizedCrop samples area and aspect
        ratio instead, which is a different augmentation than the recipe's."""
        lengths = [max(1, int(min(height, width) * scale)) for scale in self.scales]
        pairs = [
            (h, w)
            for i, h in enumerate(lengths)
            for j, w in enumerate(lengths)
            if abs(i - j) <= 1
        ]
        crop_h, crop_w = pairs[int(torch.randint(len(pairs), ()))]
        left_q, top_q = _CROP_GRID[int(torch.randint(len(_CROP_GRID), ()))]
        return (height - crop_h) // 4 * top_q, (width - crop_w) // 4 * left_q, crop_h, crop_w


@dataclass
class TestTransform:
    """Deterministic test views: short side resized to `size`, then 1 centre crop or 3 crops
    along the long side (start, centre, end), normalised with the backbone's mean and std.
    Resizes are bilinear, as in TSN-style video pipelines (ViFi-CLIP's), whatever image
    interpolation the backbone's preprocessing config names."""

    mean: Sequence[float]
    std: Sequence[float]
    size: int = 224
    crops: int = 3

    def __post_init__(self) -> None:
        if self.crops not in (1, 3):
            raise ValueError(f"test crops must be 1 or 3, got {self.crops}")

    def __call__(self, videos: torch.Tensor, sizes: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (B, K, T, H, W, 3) clips -> float (B, K * crops, T, 3, size, size).

        View v is clip v // crops under crop v % crops. `sizes` (B, 2) as in TrainTransform.
        """
        batch, clips, frames_per_clip = videos.shape[:3]
        valid = _valid_sizes(videos, sizes, 6)
        if sizes is None:  # one resize for the whole batch when nothing is padded
            views = self._views(videos.flatten(0, 2).permute(0, 3, 1, 2))
        else:
            views = torch.cat([
                self._views(video[:, :, :height, :width].flatten(0, 1).permute(0, 3, 1, 2))
                for video, (height, width) in zip(videos, valid)
            ], dim=1)
        views = views.reshape(self.crops, batch, clips, frames_per_clip, 3, self.size, self.size)
        views = views.permute(1, 2, 0, 3, 4, 5, 6).flatten(1, 2)
        mean, std = _statistics(self.mean, self.std, videos)
        return F.to_dtype(views, torch.float32, scale=True).sub_(mean).div_(std)

    def _views(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> uint8 (crops, N, 3, size, size)."""
        frames = F.resize(frames, self.size)
        height, width = frames.shape[-2:]
        spare_h, spare_w = height - self.size, width - self.size
        fractions = (0.5,) if self.crops == 1 else (0.0, 0.5, 1.0)
        return torch.stack([
            F.crop(frames, int(spare_h * f), int(spare_w * f), self.size, self.size)
            for f in fractions
        ])
