"""Tiny checkpoints, runs and videos with a known answer for the inference tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from msta_cli.core.checkpoint import save_adapter
from msta_cli.core.config import AdapterConfig, Config, dump_config
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.data.transforms import TestTransform
from msta_cli.core.inference.classes import Classes
from msta_cli.core.model import MstaModel, create_model
from tests.helpers.datasets import write_clip

FRAMES = 4
SAMPLING = ClipSampling(FRAMES)
DARK_FRAMES, SCENE_FRAMES, SCENE_FPS = 36, 64, 8  # the scene changes at 4.5 s


def tiny_adapted_model(backbone: str, seed: int = 0) -> MstaModel:
    config = Config()
    config.model.backbone = backbone
    config.adapter = AdapterConfig(bottleneck=16, blocks=[1, 2], scale=0.5)
    config.text.templates = ["a video of {}.", "a clip of {}."]
    torch.manual_seed(seed)
    return create_model(config).eval()


def write_checkpoint(folder: Path, backbone: str) -> Path:
    return save_adapter(tiny_adapted_model(backbone), folder)


def write_run(folder: Path, backbone: str, checkpoints: tuple[str, ...] = ("last",), dense_stride: int | None = None) -> Path:
    """A run folder as training leaves it: config.yaml (4 frames; segment sampling, or dense
    with `dense_stride`) and checkpoints/<name>/."""
    config = Config()
    config.model.backbone = backbone
    config.data.num_frames = FRAMES
    if dense_stride is not None:
        config.data.sampling, config.data.dense_stride = "dense", dense_stride
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(dump_config(config))
    for name in checkpoints:
        write_checkpoint(folder / "checkpoints" / name, backbone)
    return folder


def write_two_scene_video(path: Path) -> Path:
    """Black frames, then white from frame 36 (4.5 s at 8 fps) to frame 64 (8 s)."""
    frames = np.zeros((SCENE_FRAMES, 32, 64, 3), dtype=np.uint8)
    frames[DARK_FRAMES:] = 255
    return write_clip(path, frames, fps=SCENE_FPS)


def dark_bright_classes(model: MstaModel) -> Classes:
    """Class embeddings that are the model's own embeddings of a black and a white clip, so the
    right answer for any window is whichever of the two it mostly shows."""
    preprocessing = model.backbone.preprocessing
    transform = TestTransform(preprocessing.mean, preprocessing.std, preprocessing.size, crops=1)
    clips = torch.stack([torch.full((1, FRAMES, 32, 32, 3), value, dtype=torch.uint8) for value in (0, 255)])
    with torch.no_grad():
        embeddings = model.encode_video(transform(clips).flatten(0, 1))
    return Classes(("dark", "bright"), embeddings)
