"""Per-clip flip, colour jitter and grayscale with one draw per clip, shared by its frames.

torchvision's v2 transforms do this with one call per clip (a draw per call), and most of
that call's cost is the transform machinery around a few small kernels: it runs in the
training process for every batch, where on a GPU it delays the training step's own kernels
(docs/benchmarks.md). Here a batch's draws are made at once and each clip goes through plain
functions of Python-float factors, the same operations as torchvision's `adjust_brightness`,
`adjust_contrast`, `adjust_saturation`, `adjust_hue` and `rgb_to_grayscale` (tests check them
against it). A batched form (each operation once per batch, with per-clip factors) was tried
and was slower on a CPU, where its batch-sized temporaries cost more than the calls it saved.

Clips are float (frames, 3, height, width) in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

JITTER_OPERATIONS = ("brightness", "contrast", "saturation", "hue")
# ITU-R 601-2 luma, as torchvision and PIL convert to grayscale.
_LUMA = (0.2989, 0.587, 0.114)


class ClipDraw(NamedTuple):
    """One clip's random choices."""

    flip: bool
    jitter: bool  # colour jitter applied at all
    order: list[int]  # a permutation of JITTER_OPERATIONS' indices
    factors: list[float]  # brightness, contrast and saturation factors, hue shift in turns
    grayscale: bool


def draw(
    clips: int, flip_p: float, jitter_p: float, strengths: Sequence[float], grayscale_p: float
) -> list[ClipDraw]:
    """A batch's draws from torch's default CPU generator, with torchvision's ColorJitter
    ranges: factors uniform in [max(0, 1 - s), 1 + s] for brightness, contrast and
    saturation, hue shifts uniform in [-s, s]."""
    brightness, contrast, saturation, hue = (float(s) for s in strengths)
    low = torch.tensor([max(0.0, 1 - brightness), max(0.0, 1 - contrast), max(0.0, 1 - saturation), -hue])
    high = torch.tensor([1 + brightness, 1 + contrast, 1 + saturation, hue])
    columns = (
        (torch.rand(clips) < flip_p).tolist(),
        (torch.rand(clips) < jitter_p).tolist(),
        torch.rand(clips, 4).argsort(dim=1).tolist(),
        (low + torch.rand(clips, 4) * (high - low)).tolist(),
        (torch.rand(clips) < grayscale_p).tolist(),
    )
    return [ClipDraw(*row) for row in zip(*columns)]


def augment(clip: torch.Tensor, choices: ClipDraw, strengths: Sequence[float]) -> torch.Tensor:
    """Flip, then jitter in the drawn order, then grayscale; jitter operations of strength 0
    are left out, as torchvision's ColorJitter leaves them out."""
    if choices.flip:
        clip = clip.flip(-1)
    if choices.jitter:
        operations = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
        for index in choices.order:
            if strengths[index]:
                clip = operations[index](clip, choices.factors[index])
    if choices.grayscale:
        clip = luma(clip).expand_as(clip)
    return clip


def luma(clip: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 1, H, W)."""
    red, green, blue = clip.unbind(dim=-3)
    return red.mul(_LUMA[0]).add_(green, alpha=_LUMA[1]).add_(blue, alpha=_LUMA[2]).unsqueeze(-3)


def adjust_brightness(clip: torch.Tensor, factor: float) -> torch.Tensor:
    return clip.mul(factor).clamp_(0, 1)


def adjust_contrast(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with each frame's mean luma."""
    return _blend(clip, luma(clip).mean(dim=(-3, -2, -1), keepdim=True), factor)


def adjust_saturation(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with each pixel's luma."""
    return _blend(clip, luma(clip), factor)


def adjust_hue(clip: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate the HSV hue by `shift` turns, keeping saturation and value.

    Written out rather than through torchvision's HSV conversion, which is private and by far
    the costliest step of the augmentation on a CPU (`python -m bench.augmentation` compares
    them): this works on one plane at a time, with no reduction across channels and no
    torch.where.
    The hue in sixths of a turn is (g - b) / chroma if red is the largest channel,
    (b - r) / chroma + 2 if green is, (r - g) / chroma + 4 otherwise (two channels
    tied for largest give the same hue either way). After the shift, each channel returns as
    value - chroma * clamp(d - 1, 0, 1), with d the hue's distance round the circle from the
    channel's own hue (0, 2, 4): HSV to RGB in closed form.
    """
    red, green, blue = clip.unbind(dim=-3)
    value = torch.maximum(torch.maximum(red, green), blue)
    chroma = value - torch.minimum(torch.minimum(red, green), blue)
    # Picked with lerp and 0/1 weights (exact: lerp returns start at 0 and end at 1), as
    # torch.where's CPU kernel is not vectorised and took 20x as long.
    red_largest, green_largest = ((channel == value).to(clip.dtype) for channel in (red, green))
    hue_chroma = (red - green).add_(chroma, alpha=4)
    hue_chroma = hue_chroma.lerp_((blue - red).add_(chroma, alpha=2), green_largest).lerp_(green - blue, red_largest)
    # A grey (chroma 0) has hue_chroma 0, so any positive divisor gives it hue 0.
    sixths = hue_chroma.div_(chroma.clamp(min=torch.finfo(clip.dtype).tiny)).add_(6 * shift).remainder_(6)
    turned = torch.empty_like(clip)
    for plane, channel_hue in zip(turned.unbind(dim=-3), (0.0, 2.0, 4.0)):
        distance = (sixths - channel_hue).abs_()
        distance = torch.minimum(distance, 6 - distance).sub_(1).clamp_(0, 1)
        torch.addcmul(value, chroma, distance, value=-1, out=plane)
    return turned


def _blend(clip: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    return clip.mul(factor).add_(other, alpha=1 - factor).clamp_(0, 1)
