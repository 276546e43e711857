"""Where the loader benchmark's ratio comes from: per-clip cost, contention, plumbing, start-up.

bench/loader_throughput.py compares whole DataLoaders. This takes them apart on the same kind
of generated videos (H.264 in mp4, 320x240, 150 frames):

- one process and one thread, no DataLoader: milliseconds per clip for msta's dataset (PyAV) and the
  ViFi-CLIP-style dataset, the ratio the loaders can reach at best on this machine's cores;
- the same in N processes at once: whether workers slow each other down;
- DataLoaders whose workers return ready-made tensors (fork, shared-memory collate, pinning,
  copy to the device): the most clips per second the plumbing can carry, for msta's uint8
  clips and the baseline's float clips;
- the real loaders: time to the first batch (worker start-up) and the rate after it.

Run from the repository root:  python -m bench.loader_breakdown [--workers 8 --keyframe-interval 12]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from bench.loader_throughput import FRAMES, SIZE, ViFiStyleDataset, write_textured_video
from msta_cli.core.data.dataset import VideoClipDataset, make_loader

HEIGHT, WIDTH = 240, 320


def milliseconds_per_item(dataset: Dataset, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        dataset[index % len(dataset)]
    return 1000 * (time.perf_counter() - started) / count


def _in_a_worker(job: tuple[Dataset, int]) -> float:
    """Milliseconds per item with one torch thread, as in a DataLoader worker."""
    torch.set_num_threads(1)
    return milliseconds_per_item(*job)


class ReadyMade(Dataset):
    """Hands out copies of one tensor: a loader with nothing to decode."""

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype, length: int) -> None:
        self.item = torch.zeros(shape, dtype=dtype)
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.item.clone()


def deliver(loader: DataLoader, device: torch.device) -> tuple[float, float]:
    """(seconds to the first batch, clips per second after it), every batch copied to `device`."""
    started = time.perf_counter()
    first_at, clips_after_first = None, 0
    for batch in loader:
        videos = getattr(batch, "videos", batch)
        clips = videos.to(device, non_blocking=True).shape[0]
        if first_at is None:
            first_at = time.perf_counter() - started
        else:
            clips_after_first += clips
    if device.type == "cuda":
        torch.cuda.synchronize()
    return first_at, clips_after_first / max(time.perf_counter() - started - first_at, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--keyframe-interval", type=int, default=12)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--processes", type=int, nargs="+", default=[8, 16], help="processes at once")
    parser.add_argument("--clips", type=int, default=128, help="clips per measurement, msta's dataset")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    baseline_clips = max(1, args.clips // 4)  # the baseline is about 3x slower per clip

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = [f"video{i:03d}.mp4" for i in range(args.videos)]
        for seed, name in enumerate(names):
            write_textured_video(root / name, seed, 150, HEIGHT, WIDTH, args.keyframe_interval)
        split = pd.DataFrame({"path": names, "label": [0] * len(names)})
        msta = VideoClipDataset(split, root, FRAMES, max_short_side=256, backend="pyav")
        vifi = ViFiStyleDataset([root / name for name in names])

        per_clip = [("one process, one thread", _in_a_worker((msta, args.clips)),
                     _in_a_worker((vifi, baseline_clips)))]
        torch.set_num_threads(os.cpu_count() or 1)
        fork = multiprocessing.get_context("fork")
        for processes in args.processes:
            with fork.Pool(processes) as pool:
                msta_ms = pool.map(_in_a_worker, [(msta, max(1, args.clips // 2))] * processes)
                vifi_ms = pool.map(_in_a_worker, [(vifi, max(1, baseline_clips // 2))] * processes)
            per_clip.append((f"{processes} processes at once, each", sum(msta_ms) / processes,
                             sum(vifi_ms) / processes))

        torch.zeros(1, device=device)  # start CUDA first, as training does before its loaders
        pin = device.type == "cuda"
        plumbing = [
            (f"ready-made uint8 {FRAMES}x{HEIGHT}x{WIDTH}x3 clips",
             DataLoader(ReadyMade((FRAMES, HEIGHT, WIDTH, 3), torch.uint8, 4 * args.clips),
                        batch_size=args.batch_size, num_workers=args.workers, pin_memory=pin)),
            (f"ready-made float {FRAMES}x3x{SIZE}x{SIZE} clips",
             DataLoader(ReadyMade((FRAMES, 3, SIZE, SIZE), torch.float32, 4 * args.clips),
                        batch_size=args.batch_size, num_workers=args.workers, pin_memory=pin)),
            ("msta (PyAV), uint8 clips",
             make_loader(msta, args.batch_size, args.workers, RandomSampler(msta, num_samples=4 * args.clips))),
            ("ViFi-CLIP style, float clips",
             DataLoader(vifi, batch_size=args.batch_size, num_workers=args.workers, pin_memory=pin,
                        sampler=RandomSampler(vifi, num_samples=2 * args.clips))),
        ]
        delivered = [(name, *deliver(loader, device)) for name, loader in plumbing]

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name() if device.type == 'cuda' else 'no GPU'}")
    print(f"{args.videos} videos {WIDTH}x{HEIGHT} x 150 frames (h264.mp4, keyframe every "
          f"{args.keyframe_interval}), clips of {FRAMES} frames, batch {args.batch_size}, "
          f"{args.workers} workers\n")
    print("| per clip, no DataLoader | msta (ms) | ViFi-CLIP style (ms) | ratio |\n|---|---|---|---|")
    for name, msta_ms, vifi_ms in per_clip:
        print(f"| {name} | {msta_ms:.1f} | {vifi_ms:.1f} | {vifi_ms / msta_ms:.2f}x |")
    print(f"\n| DataLoader, {args.workers} workers, to {device.type} | first batch after (s) | "
          "clips/s after it |\n|---|---|---|")
    for name, first_at, rate in delivered:
        print(f"| {name} | {first_at:.2f} | {rate:.0f} |")


if __name__ == "__main__":
    main()
