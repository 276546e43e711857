"""Predict latency and throughput: PyTorch eager (a merged export) vs ONNX Runtime (an ONNX export).

Model: open_clip ViT-B-16-quickgelu with MSTA adapters as in recipes/fewshot.yaml (r=128,
blocks 8-12), random weights (speed does not depend on their values), 8 frames, one 224 px
view, 10 classes baked into both exports (`--backbone`, `--bottleneck` and `--blocks` pick
another, e.g. msta-tiny for a quick check). Videos: the loader benchmark's panning noise,
320x240, 25 fps, 3 s, H.264.

- cold: wall time of a fresh `python -m msta_cli predict VIDEO --model EXPORT` process
  (imports, model load, decode, one clip), median of `--repeats`.
- warm: one video through an already loaded predictor (decode + transform + model), median.
- batch: clips/s over `--videos` videos with `--batch-size` videos per forward pass (the ONNX
  file takes any batch, as exported by default).

Run from the repository root:  python -m bench.predict_latency [--videos 16 --device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.loader_throughput import write_textured_video
from msta_cli.core.config import AdapterConfig, Config, ModelConfig
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.inference.batch import predict_videos
from msta_cli.core.inference.classes import embed_classes
from msta_cli.core.inference.export import export_model
from msta_cli.core.inference.predictor import ModelOptions, load_predictor
from msta_cli.core.model import create_model

CLASSES = ("archery", "bowling", "cartwheel", "diving", "fencing", "juggling", "punch", "rowing", "skiing", "surfing")
FRAMES = 8


def build_exports(root: Path, backbone: str, bottleneck: int, blocks: list[int]) -> dict[str, Path]:
    """The same model as a merged file (PyTorch) and an ONNX file (ONNX Runtime); seconds per export."""
    config = Config(model=ModelConfig(backbone, "none"), adapter=AdapterConfig(bottleneck=bottleneck, blocks=blocks))
    torch.manual_seed(0)
    model = create_model(config).eval()
    classes = embed_classes(model, CLASSES)
    exports = {"pytorch": root / "model.safetensors", "onnxruntime": root / "model.onnx"}
    for backend, path in exports.items():
        start = time.perf_counter()
        report = export_model(model, "merged" if backend == "pytorch" else "onnx", path, ClipSampling(FRAMES), classes)
        worst = max(check.difference for check in report.checks)
        print(f"exported {path.name} in {time.perf_counter() - start:.1f} s (max |difference| {worst:.2g})", flush=True)
    return exports


def cold_seconds(model: Path, video: Path, device: str, repeats: int) -> float:
    command = [sys.executable, "-m", "msta_cli", "predict", str(video), "--model", str(model), "--format", "json", "--device", device]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def warm_milliseconds(predictor, video: Path, repeats: int) -> float:
    list(predict_videos(predictor, [video]))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        list(predict_videos(predictor, [video]))
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def clips_per_second(predictor, videos: list[Path], batch_size: int, workers: int) -> float:
    start = time.perf_counter()
    results = list(predict_videos(predictor, videos, batch_size=batch_size, workers=workers))
    assert len(results) == len(videos)
    return len(videos) / (time.perf_counter() - start)


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="cold starts and warm runs per backend")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (ONNX Runtime on CUDA needs onnxruntime-gpu)")
    parser.add_argument("--backbone", default="ViT-B-16-quickgelu", help="open_clip name, random weights (or msta-tiny)")
    parser.add_argument("--bottleneck", type=int, default=128)
    parser.add_argument("--blocks", type=int, nargs=2, default=[8, 12])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        videos = [root / f"video{i:03d}.mp4" for i in range(args.videos)]
        for seed, video in enumerate(videos):
            write_textured_video(video, seed, frames=75, height=240, width=320, keyframe_interval=250)
        for backend, path in build_exports(root, args.backbone, args.bottleneck, args.blocks).items():
            predictor = load_predictor(str(path), None, ModelOptions(device=args.device))
            row = {
                "backend": backend,
                "device": args.device,
                "cold_s": round(cold_seconds(path, videos[0], args.device, args.repeats), 2),
                "warm_ms": round(warm_milliseconds(predictor, videos[0], args.repeats), 1),
                "batch_clips_per_s": round(clips_per_second(predictor, videos, args.batch_size, args.workers), 2),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\nmachine: {machine(args.device)}; {args.backbone}; {args.videos} videos, batch {args.batch_size}, "
          f"{args.workers} workers\n")
    print("| backend | device | cold process (s) | warm, one clip (ms) | batch (clips/s) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['backend']} | {row['device']} | {row['cold_s']} | {row['warm_ms']} | {row['batch_clips_per_s']} |")


if __name__ == "__main__":
    main()
