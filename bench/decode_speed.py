"""Milliseconds per training clip for each msta decoder: PyAV (msta's sparse reader) vs decord.

Each stream is a set of generated 150-frame videos; a clip is `open_video` + `get_batch` of 8
TSN-sampled frames, shrunk to short side 256 at most, as the training loader asks for it. Both
backends decode the same clips (same sampled positions), alternating, in one process and one
thread; the table reports the median over rounds and the speed-up of PyAV over decord.
It also times opening alone: FFmpeg's stream probe (`av.open`, which decord and most loaders
pay per open) against msta's whole `open_video` (a probe that decodes nothing, plus the packet
index the sparse reader needs).

Run from the repository root:  python -m bench.decode_speed [--videos 6 --rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import av
import torch

from bench.loader_throughput import write_textured_video
from msta_cli.core.data.decoding import open_video
from msta_cli.core.data.sampling import train_segment_indices

# name -> (suffix, codec, height, width, keyframe interval)
STREAMS = {
    "H.264 320x240, keyframe every 250": (".mp4", "libx264", 240, 320, 250),
    "H.264 320x240, keyframe every 12": (".mp4", "libx264", 240, 320, 12),
    "H.264 640x360, keyframe every 250": (".mp4", "libx264", 360, 640, 250),
    "H.264 1280x720, keyframe every 250": (".mp4", "libx264", 720, 1280, 250),
    "VP9 320x240 (webm)": (".webm", "libvpx-vp9", 240, 320, 250),
}
BACKENDS = ("decord", "pyav")


def clip_milliseconds(paths: list[Path], positions: list[list[int]], backend: str) -> float:
    """Mean milliseconds to open each video and decode its clip."""
    started = time.perf_counter()
    for path, frames in zip(paths, positions):
        with open_video(path, backend, 1, 256) as reader:
            reader.get_batch(frames)
    return (time.perf_counter() - started) * 1000 / len(paths)


def open_milliseconds(paths: list[Path], opener: Callable[[Path], Any]) -> float:
    """Mean milliseconds to open (and close) each video with `opener`."""
    started = time.perf_counter()
    for path in paths:
        opener(path).close()
    return (time.perf_counter() - started) * 1000 / len(paths)


OPENERS = {
    "ffmpeg probe": lambda path: av.open(str(path)),
    "msta open": lambda path: open_video(path, "pyav", 1, 256),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (suffix, codec, height, width, keyframes) in STREAMS.items():
            paths = [Path(tmp) / f"{codec}-{height}-{keyframes}-{i}{suffix}" for i in range(args.videos)]
            for seed, path in enumerate(paths):
                write_textured_video(path, seed, 150, height, width, keyframes, codec)
            times: dict[str, list[float]] = {key: [] for key in (*BACKENDS, *OPENERS)}
            for _ in range(args.rounds):
                positions = [train_segment_indices(150, 8, rng) for _ in paths]
                for backend in BACKENDS:
                    times[backend].append(clip_milliseconds(paths, positions, backend))
                for key, opener in OPENERS.items():
                    times[key].append(open_milliseconds(paths, opener))
            decord, pyav, probe, msta_open = (statistics.median(values) for values in times.values())
            rows.append(f"| {name} | {decord:.1f} | {pyav:.1f} | {decord / pyav:.2f}x | {probe:.2f} | {msta_open:.2f} |")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"PyAV {av.__version__}, 1 thread; {args.videos} videos x {args.rounds} rounds per stream")
    print("| stream | decord (ms per clip) | msta PyAV (ms per clip) | PyAV speed-up "
          "| FFmpeg probe (ms per open) | msta open_video (ms) |\n|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
