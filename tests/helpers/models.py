"""Tiny random open_clip models for tests: milliseconds per step, real open_clip code paths."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import torch
from safetensors.torch import save_file

TINY_MEAN = [0.5, 0.4, 0.3]
TINY_STD = [0.2, 0.25, 0.3]


def tiny_model_config(width: int = 64, layers: int = 2, image_size: int = 32) -> dict:
    return {
        "embed_dim": 32,
        "vision_cfg": {"image_size": image_size, "layers": layers, "width": width, "patch_size": 8, "head_width": 32},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": width, "heads": 2, "layers": layers},
    }


def write_tiny_clip(directory: Path, weights: bool = True, seed: int = 0, **sizes) -> str:
    """A `local-dir:` open_clip model folder; returns its name.

    With `weights`, a seeded random state dict is saved beside the config, so every load gives
    the same backbone, as real pretrained weights would.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": tiny_model_config(**sizes), "preprocess_cfg": {"mean": TINY_MEAN, "std": TINY_STD}}
    (directory / "open_clip_config.json").write_text(json.dumps(config))
    name = f"local-dir:{directory}"
    if weights:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = open_clip.create_model(name)
        save_file(model.state_dict(), directory / "open_clip_model.safetensors")
    return name
