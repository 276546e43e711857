"""Training augmentation of one batch: msta's TrainTransform vs torchvision's v2 transforms per clip.

Both crop each clip at its own box and resize it to 224 while still uint8, then flip, colour
jitter (p 0.8, each clip its own factors and order) and grayscale (p 0.2) each clip with its
own draws, and normalise. The baseline does the photometric part as msta did before: a
torchvision v2 Compose called once per clip (a draw per call), then F.normalize. msta's
TrainTransform makes the batch's draws at once and runs its own colour functions per clip
(core/data/colour.py).

"queued" is how long the call takes to return, the time the training process spends on it;
on a GPU the work itself may finish later, and "done" waits for it. The tiny input (16x16
frames to 8x8) leaves only the per-call cost: Python and kernel launches. On CUDA the last
column says whether a call made the CPU wait for the GPU (torch's sync debug mode), which
would stop the next batch's work from being queued while the previous training step runs.
A second table times each colour operation on one clip, torchvision's against msta's.

Run from the repository root:  python -m bench.augmentation [--device cuda]
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from dataclasses import dataclass

import torch
import torchvision.transforms.v2 as v2
import torchvision.transforms.v2.functional as F

from msta_cli.core.data import colour
from msta_cli.core.data.transforms import TrainTransform

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class PerClipTorchvision(TrainTransform):
    """TrainTransform's crops with the photometric steps as one torchvision v2 call per clip."""

    def __post_init__(self) -> None:
        self.per_clip = v2.Compose([
            v2.RandomHorizontalFlip(self.flip_p),
            v2.RandomApply([v2.ColorJitter(*self.jitter)], p=self.jitter_p),
            v2.RandomGrayscale(self.grayscale_p),
        ])

    def __call__(self, videos: torch.Tensor, sizes: torch.Tensor | None = None) -> torch.Tensor:
        clips = []
        for clip in videos:
            frames = clip.permute(0, 3, 1, 2)
            top, left, crop_h, crop_w = self._crop_box(*frames.shape[-2:])
            frames = F.resized_crop(frames, top, left, crop_h, crop_w, [self.size, self.size])
            clips.append(self.per_clip(F.to_dtype(frames, torch.float32, scale=True)))
        return F.normalize(torch.stack(clips), list(self.mean), list(self.std))


def timed(transform, videos: torch.Tensor, repeats: int) -> tuple[float, float, bool]:
    """(ms queued, ms done, synchronised with the GPU) per call, means over `repeats`."""
    cuda = videos.device.type == "cuda"
    for _ in range(3):
        transform(videos)
    if cuda:
        torch.cuda.synchronize()
    queued = 0.0
    started = time.perf_counter()
    for _ in range(repeats):
        call_started = time.perf_counter()
        transform(videos)
        queued += time.perf_counter() - call_started
    if cuda:
        torch.cuda.synchronize()
    done = time.perf_counter() - started
    synchronised = False
    if cuda:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            transform(videos)
            torch.cuda.set_sync_debug_mode("default")
        synchronised = any("synchroniz" in str(warning.message) for warning in caught)
    return 1000 * queued / repeats, 1000 * done / repeats, synchronised


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.machine()} CPU, {args.threads} thread(s)")
    print(f"machine: {machine}, torch {torch.__version__}; batch {args.batch} x {args.frames} frames, "
          f"mean of {args.repeats} calls")
    print("| input | transform | queued (ms) | done (ms) | done, vs per-clip torchvision | waits for the GPU |\n"
          "|---|---|---|---|---|---|")
    for label, height, width, size in (("240x320 -> 224", 240, 320, 224), ("tiny: 16x16 -> 8", 16, 16, 8)):
        videos = torch.randint(0, 256, (args.batch, args.frames, height, width, 3), dtype=torch.uint8, device=device)
        rows = {}
        for name, kind in (("per-clip torchvision v2", PerClipTorchvision), ("msta TrainTransform", TrainTransform)):
            torch.manual_seed(0)
            rows[name] = timed(kind(MEAN, STD, size=size), videos, args.repeats)
        baseline = rows["per-clip torchvision v2"][1]
        for name, (queued, done, synchronised) in rows.items():
            waits = ("yes" if synchronised else "no") if device.type == "cuda" else "n/a"
            print(f"| {label} | {name} | {queued:.2f} | {done:.2f} | {baseline / done:.2f}x | {waits} |")
    colour_operations(device, args.frames, args.repeats)


def colour_operations(device: torch.device, frames: int, repeats: int) -> None:
    """One clip through each colour operation, torchvision's against msta's."""
    clip = torch.rand(frames, 3, 224, 224, device=device)
    print(f"\none clip of {frames}x3x224x224 float, mean of {repeats} calls\n"
          "| operation | torchvision (ms) | msta (ms) | msta speed-up |\n|---|---|---|---|")
    for name, argument in (("adjust_brightness", 1.2), ("adjust_contrast", 1.2),
                           ("adjust_saturation", 1.2), ("adjust_hue", 0.05)):
        torchvision_ms, msta_ms = (
            timed(lambda videos, operation=operation: operation(videos, argument), clip, repeats)[1]
            for operation in (getattr(F, name), getattr(colour, name))
        )
        print(f"| {name} | {torchvision_ms:.2f} | {msta_ms:.2f} | {torchvision_ms / msta_ms:.2f}x |")


if __name__ == "__main__":
    main()
