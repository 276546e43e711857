"""Clips per second delivered to the model: msta's loader vs a ViFi-CLIP-style loader.

Both read the same generated videos with the same number of workers, sample 8 frames per
clip (TSN segments) and deliver normalised float (B, 8, 3, 224, 224) training clips to the
training device: the "to the model" row is the comparison the 3x target is about. Each loader
runs as its trainer runs it: msta's keeps its workers from one pass (epoch) to the next,
ViFi-CLIP's starts them afresh.

msta: decode only the sampled frames and what they reference, shrunk on decode to short side
256 at most (these 240p videos keep their size), uint8 batches out of the workers, then
TrainTransform on the training device (CPU when there is no GPU). Two diagnostic rows stop
before the augmentation: the uint8 clips copied to the training device (what the decoding side
delivers), with the workers kept and started afresh each pass.

ViFi-CLIP style (its mmaction pipeline): read the whole file into memory, open it with
decord from bytes, fetch frames one at a time, then resize and crop (OpenCV), flip, jitter
and grayscale (torchvision on PIL images) and normalise each frame on the CPU inside the
workers. Needs the bench extra: pip install -e ".[bench]" (OpenCV, as mmcv uses).

Timing: CUDA is initialised and every loader makes one untimed pass first (worker start-up,
kernel loading, the page cache); then the loaders take turns for --rounds passes, starting
each round with the next loader, and each row reports the median over rounds of its rate
divided by the baseline's in the same round, with the lowest and highest.

"main process waiting" is the share of a pass the consuming loop spent waiting for batches:
high, the workers limit the rate; near 0, the main process does (the DataLoader's plumbing and,
in the augmented rows, the transform). On a CPU the main process runs the transform with the
cores the workers leave (at least one thread).

Run from the repository root:  python -m bench.loader_throughput [--videos 64 --clips 512 --workers 2 --backends pyav decord]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch
import torchvision.transforms as v1
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler

from msta_cli.core.data.dataset import VideoClipDataset, make_loader
from msta_cli.core.data.sampling import train_segment_indices
from msta_cli.core.data.transforms import TrainTransform

MEAN = (0.48145466, 0.4578275, 0.40821073)  # any backbone's values do; these are OpenAI CLIP's
STD = (0.26862954, 0.26130258, 0.27577711)
FRAMES = 8
SIZE = 224
SCALES = (1.0, 0.875, 0.75, 0.66)


# Encoder options per codec: x264 at its default preset; VP9 fast enough to write test clips;
# MPEG-4 Part 2 with two B-frames, like the XviD AVIs of UCF101 and HMDB51.
ENCODER_OPTIONS = {
    "libx264": {"crf": "23"},
    "libvpx-vp9": {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8"},
    "mpeg4": {"b": "1500k", "bf": "2"},
}
# --codec: (encoder, file suffix); vp9 in webm is how Something-Something v2 ships
CODECS = {"h264": ("libx264", ".mp4"), "mpeg4": ("mpeg4", ".avi"), "vp9": ("libvpx-vp9", ".webm")}


def write_textured_video(
    path: Path, seed: int, frames: int, height: int, width: int, keyframe_interval: int, codec: str = "libx264"
) -> None:
    """A panning smooth-noise texture: content an encoder must actually work on."""
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.integers(0, 256, (3, height + frames, width + frames)))
    texture = torch.nn.functional.avg_pool2d(noise[None].float(), 5, 1, 2)[0]
    texture = texture.permute(1, 2, 0).to(torch.uint8).numpy()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(25))
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        stream.options = {**ENCODER_OPTIONS[codec], "g": str(keyframe_interval)}
        for t in range(frames):
            picture = np.ascontiguousarray(texture[t : t + height, t : t + width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())


class ViFiStyleDataset(Dataset):
    """The per-frame CPU pipeline of ViFi-CLIP's training loader (its datasets/pipeline.py).

    DecordInit (file bytes into memory, decord from BytesIO), DecordDecode (one frame at a
    time), Resize to short side 256 and MultiScaleCrop + Resize to 224 with OpenCV (mmcv's
    imresize), Flip, ColorJitter and GrayScale through torchvision on one PIL image per frame
    (so jitter is drawn per frame, as there), Normalize in float32 (mmcv's imnormalize).
    """

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.jitter = v1.ColorJitter(0.4, 0.4, 0.2, 0.1)
        self.grayscale = v1.Grayscale(num_output_channels=3)
        self.mean = np.array(MEAN, np.float64).reshape(1, -1) * 255
        self.std_inverse = 1 / (np.array(STD, np.float64).reshape(1, -1) * 255)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        import cv2
        import decord

        reader = decord.VideoReader(io.BytesIO(self.paths[index].read_bytes()), num_threads=1)
        rng = random.Random()
        positions = train_segment_indices(len(reader), FRAMES, rng)
        decoded = {i: reader[i].asnumpy() for i in sorted(set(positions))}
        height, width = decoded[positions[0]].shape[:2]
        scale = 256 / min(height, width)
        height, width = round(height * scale), round(width * scale)
        frames = [cv2.resize(decoded[i], (width, height), interpolation=cv2.INTER_LINEAR) for i in positions]
        crop_h, crop_w = (int(min(height, width) * rng.choice(SCALES)) for _ in range(2))
        top, left = rng.randint(0, height - crop_h), rng.randint(0, width - crop_w)
        frames = [
            cv2.resize(f[top : top + crop_h, left : left + crop_w], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
            for f in frames
        ]
        if rng.random() < 0.5:
            frames = [cv2.flip(f, 1) for f in frames]
        if rng.random() < 0.8:
            frames = [np.asarray(self.jitter(Image.fromarray(f))) for f in frames]
        if rng.random() < 0.2:
            frames = [np.asarray(self.grayscale(Image.fromarray(f))) for f in frames]
        arrays = []
        for frame in frames:
            normalised = frame.astype(np.float32)
            cv2.subtract(normalised, self.mean, normalised)
            cv2.multiply(normalised, self.std_inverse, normalised)
            arrays.append(normalised)
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def clips_per_second(batches, to_model) -> tuple[float, int, int, float]:
    """Consume every batch, turning it into model input with `to_model`; (clips/s, clips
    delivered, clips msta's loader left out as failed videos, share of the time the main
    process waited for the loader). That share tells what limits a pass: near 0 the main
    process (DataLoader plumbing and `to_model`) is the bottleneck, not the workers."""
    start = time.perf_counter()
    clips = failed = 0
    batches = iter(batches)  # starts the workers: waiting for them counts as waiting
    waited = time.perf_counter() - start
    while True:
        before = time.perf_counter()
        batch = next(batches, None)
        waited += time.perf_counter() - before
        if batch is None:
            break
        clips += to_model(batch).shape[0]
        failed += len(getattr(batch, "failures", ()))
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # GPU transforms run asynchronously: count them finished
    seconds = time.perf_counter() - start
    return clips / seconds, clips, failed, waited / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per loader, after an untimed one")
    # A pass is an epoch. ViFi-CLIP's loader starts its workers afresh every epoch; msta's
    # training loader keeps them (persistent_workers): the untimed first pass pays their
    # start-up, as a run's first epoch does, so the rounds measure later epochs. The "workers
    # started afresh" row is msta without that. Start-up (fork, first batch) weighs most in
    # short epochs: 102 clips in a 2-shot HMDB51 epoch (--clips 104), 416 in a base-to-novel
    # one, 240,000 in Kinetics'. Passes of 512 clips (each video drawn 8 times) are the default.
    parser.add_argument("--clips", type=int, default=512, help="clips per pass, drawn from the videos")
    parser.add_argument(
        "--backends", nargs="+", default=["pyav"], choices=["pyav", "decord"],
        help="msta decoders to measure, each against the same baseline",
    )
    # 250 is libx264's default (re-encoded Kinetics clips: one or two keyframes per clip); 12 is
    # typical of the XviD/DivX AVIs of UCF101 and HMDB51. Sparse decoding gains with more keyframes.
    parser.add_argument("--keyframe-interval", type=int, default=250)
    parser.add_argument("--codec", choices=list(CODECS), default="h264",
                        help="h264 in mp4; mpeg4 (Part 2, B-frames) in avi as UCF101 and HMDB51 ship; "
                             "vp9 in webm as SSv2 ships (its clips are short: add --frames 48)")
    args = parser.parse_args()
    encoder, suffix = CODECS[args.codec]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":  # the transform shares the cores with the workers, as a CPU trainer's would
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - args.workers))
    load_before = os.getloadavg()[0]
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = [f"video{i:03d}{suffix}" for i in range(args.videos)]
        for seed, name in enumerate(names):
            write_textured_video(root / name, seed, args.frames, 240, 320, args.keyframe_interval, encoder)
        split = pd.DataFrame({"path": names, "label": [0] * len(names)})

        transform = TrainTransform(MEAN, STD, size=SIZE)

        def augmented(batch):
            return transform(batch.videos.to(device, non_blocking=True), batch.sizes)

        def on_device(batch):
            return batch.videos.to(device, non_blocking=True)

        vifi_dataset = ViFiStyleDataset([root / name for name in names])
        baseline = "ViFi-CLIP style (decode + CPU augmentation in workers), to the model"
        passes = {baseline: (
            DataLoader(vifi_dataset, batch_size=args.batch_size, num_workers=args.workers,
                       sampler=RandomSampler(vifi_dataset, num_samples=args.clips),
                       pin_memory=device.type == "cuda"),
            lambda batch: batch.to(device, non_blocking=True),
        )}
        datasets = []
        for backend in args.backends:
            dataset = VideoClipDataset(split, root, FRAMES, max_short_side=256, backend=backend)
            datasets.append(dataset)
            sampler = RandomSampler(dataset, num_samples=args.clips)
            loader = make_loader(dataset, args.batch_size, args.workers, sampler, persistent_workers=True)
            afresh = make_loader(dataset, args.batch_size, args.workers, sampler)
            passes[f"msta ({backend}), loader + TrainTransform on {device}, to the model"] = (loader, augmented)
            passes[f"msta ({backend}), uint8 clips on {device}, before augmentation"] = (loader, on_device)
            passes[f"msta ({backend}), uint8 clips on {device}, workers started afresh each pass"] = (afresh, on_device)
        if device.type == "cuda":
            torch.zeros(1, device=device)  # CUDA's start-up, outside every timed pass
        for loader, to_model in passes.values():
            clips_per_second(loader, to_model)  # untimed: worker start-up, first kernels, page cache
        rates: dict[str, list[float]] = {name: [] for name in passes}
        waits: dict[str, list[float]] = {name: [] for name in passes}
        failures = dict.fromkeys(passes, 0)
        names_in_turn = list(passes)
        for round_index in range(args.rounds):
            for dataset in datasets:
                dataset.set_epoch(round_index + 1)  # fresh frame positions each round, as in training
            # each round starts with the next loader, so no loader always runs first (or after the same one)
            shift = round_index % len(names_in_turn)
            for name in names_in_turn[shift:] + names_in_turn[:shift]:
                loader, to_model = passes[name]
                rate, clips, failed, waited = clips_per_second(loader, to_model)
                rates[name].append(rate)
                waits[name].append(waited)
                failures[name] += failed

    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} on "
          f"{torch.cuda.get_device_name() if device.type == 'cuda' else device}; main process "
          f"{torch.get_num_threads()} thread(s); load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"{args.videos} videos 320x240 x {args.frames} frames ({args.codec}{suffix}, keyframe every "
          f"{args.keyframe_interval}), {clips} clips of {FRAMES}x{SIZE}x{SIZE}, batch "
          f"{args.batch_size}, {args.workers} workers")
    print(f"{args.rounds} timed rounds after one untimed pass per loader; ratios paired by round: median (lowest-highest)")
    # a clip that fails to decode is not delivered, and its rate would not compare
    print("| loader | clips/s | vs ViFi-CLIP style | main process waiting | clips failed |\n|---|---|---|---|---|")
    for name, values in rates.items():
        ratios = [rate / base for rate, base in zip(values, rates[baseline])]
        spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
        print(f"| {name} | {statistics.median(values):.1f} | {statistics.median(ratios):.2f}x{spread} | "
              f"{statistics.median(waits[name]):.0%} | {failures[name]} |")


if __name__ == "__main__":
    main()
