"""Training-step cost of MSTA vs full fine-tuning (the ViFi-CLIP regime) vs a linear probe.

Same backbone, same batch, same input, one run: each regime runs in its own subprocess so its
peak memory is its own. Inputs are random normalised clips, so this measures the model step
only (data loading has its own benchmark, bench/loader_throughput.py).

    python -m bench.train_throughput                      # small random ViT, CPU-sized
    python -m bench.train_throughput --backbone ViT-B-16-quickgelu --frames 8 --batch 4 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from msta_cli.core.config import AdapterConfig, Config
from msta_cli.core.model import create_model

REGIMES = ("msta", "full-finetune", "linear-probe")
EPOCH_CLIPS = 416  # one HMDB51 base-to-novel epoch: 16 videos x 26 base classes


def small_backbone(folder: Path) -> str:
    config = {
        "model_cfg": {
            "embed_dim": 256,
            "vision_cfg": {"image_size": 112, "layers": 6, "width": 256, "patch_size": 16, "head_width": 64},
            "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 6},
        }
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return f"local-dir:{folder}"


def run_regime(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    device = torch.device(args.device)
    config = Config()
    config.model.backbone, config.model.pretrained = args.backbone, "none"
    config.adapter = AdapterConfig(bottleneck=args.bottleneck, blocks=args.blocks)
    model = create_model(config, device, adapters=args.regime == "msta")
    classes = [f"action {i}" for i in range(args.classes)]
    tokens = model.prompt_tokens(classes)
    if args.regime == "full-finetune":
        model.backbone.requires_grad_(True)
        model.backbone.train()
    probe = nn.Linear(model.backbone.embed_dim, args.classes).to(device) if args.regime == "linear-probe" else None
    trainable = [p for p in model.parameters() if p.requires_grad] + (list(probe.parameters()) if probe else [])
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    size = model.backbone.preprocessing.size
    frames = torch.randn(args.batch, args.frames, 3, size, size, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision, torch.float32)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=args.precision != "fp32"):
            if probe is not None:
                with torch.no_grad():
                    video = model.encode_video(frames)
                logits = probe(video.float())
            else:
                logits = model(frames, model.embed_prompts(tokens, len(classes)))
            loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / args.steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    clips_per_second = args.batch / seconds
    return {
        "regime": args.regime, "trainable": sum(p.numel() for p in trainable), "step_s": round(seconds, 4),
        "clips_per_s": round(clips_per_second, 2), "epoch_s": round(EPOCH_CLIPS / clips_per_second, 1),
        "peak_gib": round(peak, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=None, help="open_clip name; default: a small random ViT (width 256, 6 layers, 112 px)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--classes", type=int, default=26)
    parser.add_argument("--bottleneck", type=int, default=64)
    parser.add_argument("--blocks", type=int, nargs=2, default=[1, 6])
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--regime", choices=REGIMES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.regime:
        print(json.dumps(run_regime(args)))
        return
    with tempfile.TemporaryDirectory() as folder:
        backbone = args.backbone or small_backbone(Path(folder))
        rows = []
        for regime in REGIMES:
            command = [sys.executable, "-m", "bench.train_throughput", "--regime", regime, "--backbone", backbone]
            for name in ("device", "frames", "batch", "classes", "bottleneck", "precision", "steps", "warmup"):
                command += [f"--{name}", str(getattr(args, name))]
            command += ["--blocks", *map(str, args.blocks)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    print(f"machine: {platform.platform()}; device: {device}; torch {torch.__version__}")
    print(f"backbone: {args.backbone or 'small random ViT'}; {args.frames} frames; batch {args.batch}; {args.precision}")
    baseline = next(r for r in rows if r["regime"] == "full-finetune")
    print("| regime | trainable | step (s) | clips/s | x full FT | epoch of 416 clips (s) | peak memory (GiB) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = row["clips_per_s"] / baseline["clips_per_s"]
        print(f"| {row['regime']} | {row['trainable']:,} | {row['step_s']} | {row['clips_per_s']} | {ratio:.2f}x | {row['epoch_s']} | {row['peak_gib']} |")


if __name__ == "__main__":
    main()
