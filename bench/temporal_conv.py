"""MSTA's temporal up-projection: torch's Conv1d vs msta's dense matmul form, forward + backward.

Both compute the same kernel-3 convolution over the frames of (clips, frames, tokens, channels)
adapter tokens with the same weights; Conv1d needs the tokens permuted to (clips * tokens,
channels, frames) and back, which is counted. TemporalConv runs the dense form for grouped
convolutions on the CPU and Conv1d everywhere else; the last column says which it picks here.

Run from the repository root:  python -m bench.temporal_conv [--threads 1] [--device cuda]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from msta_cli.core.adapter import TemporalConv

# (name, in channels, out channels, groups, tokens): the synthetic world's msta-tiny (64 px,
# patch 8) and ViT-B/16 at 224 px with the recipes' bottlenecks.
SHAPES = [
    ("msta-tiny, r=32 -> 128, grouped", 32, 128, 32, 65),
    ("ViT-B/16, r=128 -> 768, grouped", 128, 768, 128, 197),
    ("ViT-B/16, 768 -> 768, depthwise", 768, 768, 768, 197),
]


def with_conv1d(conv: torch.nn.Conv1d, series: torch.Tensor) -> torch.Tensor:
    clips, frames, tokens, channels = series.shape
    per_token = series.permute(0, 2, 3, 1).reshape(clips * tokens, channels, frames)
    return conv(per_token).reshape(clips, tokens, -1, frames).permute(0, 3, 1, 2)


def milliseconds(step, repeats: int, device: torch.device) -> float:
    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    machine = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.machine()} CPU, {args.threads} thread(s)"
    print(f"machine: {machine}, torch {torch.__version__}; {args.clips} clips x {args.frames} frames, "
          f"forward + backward, mean of {args.repeats}")
    print("| temporal up-projection | torch Conv1d (ms) | dense matmul (ms) | dense speed-up | TemporalConv runs |\n"
          "|---|---|---|---|---|")
    for name, in_channels, out_channels, groups, tokens in SHAPES:
        torch.manual_seed(0)
        ours = TemporalConv(in_channels, out_channels, groups=groups).to(device)
        reference = torch.nn.Conv1d(in_channels, out_channels, 3, padding=1, groups=groups).to(device)
        reference.load_state_dict(ours.state_dict())
        series = torch.randn(args.clips, args.frames, tokens, in_channels, device=device, requires_grad=True)
        upstream = torch.randn(args.clips, args.frames, tokens, out_channels, device=device)
        expected = with_conv1d(reference, series)
        torch.testing.assert_close(ours.dense_over_frames(series), expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours(series), expected, rtol=1e-4, atol=1e-4)
        baseline = milliseconds(lambda: with_conv1d(reference, series).backward(upstream), args.repeats, device)
        measured = milliseconds(lambda: ours.dense_over_frames(series).backward(upstream), args.repeats, device)
        picked = "dense" if groups != out_channels and device.type == "cpu" else "Conv1d"
        print(f"| {name} | {baseline:.2f} | {measured:.2f} | {baseline / measured:.2f}x | {picked} |")


if __name__ == "__main__":
    main()
