"""Tiny prepared datasets (the `msta prepare` layout) whose classes a tiny model can learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from msta_cli.core.synthetic.dataset import encode_mp4

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 230), "yellow": (230, 220, 30), "purple": (150, 40, 190), "cyan": (30, 210, 210)}


def write_clip(path: Path, frames: np.ndarray, fps: int = 8) -> Path:
    """Encode uint8 (T, H, W, 3) frames as an mp4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_mp4(path, frames, fps=fps, crf=18)
    return path


def colour_clip(colour: str, rng: np.random.Generator, frames: int = 12, size: tuple[int, int] = (40, 64)) -> np.ndarray:
    """A noisy frame tinted with the class colour and a bright square of it drifting across."""
    height, width = size
    tint = (np.array(COLOURS[colour]) * 0.5).astype(np.uint8)
    video = rng.integers(0, 40, size=(frames, height, width, 3), dtype=np.uint8) + tint
    top, left = rng.integers(0, height - 16), rng.integers(0, width - 24)
    for t in range(frames):
        x = min(width - 16, left + t)
        video[t, top : top + 16, x : x + 16] = COLOURS[colour]
    return video


def write_colour_dataset(root: Path, classes: list[str], train_per_class: int, test_per_class: int, seed: int = 0) -> Path:
    """A prepared dataset folder: dataset.yaml, labels.csv, train.csv, test.csv, videos/."""
    rng = np.random.default_rng(seed)
    rows = {"train": [], "test": []}
    for label, colour in enumerate(classes):
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            for number in range(count):
                relative = f"{colour}/{split}_{number}.mp4"
                write_clip(root / "videos" / relative, colour_clip(colour, rng))
                rows[split].append((relative, label))
    pd.DataFrame({"id": range(len(classes)), "name": classes}).to_csv(root / "labels.csv", index=False)
    for split, split_rows in rows.items():
        pd.DataFrame(split_rows, columns=["path", "label"]).to_csv(root / f"{split}.csv", index=False)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"name": "colours", "video_root": str((root / "videos").resolve())}))
    return root


def write_base_to_novel_lists(root: Path, base: list[int], novel: list[int], seeds: tuple[int, ...] = (1, 2)) -> None:
    """base2novel/ lists over an existing colour dataset, labels re-indexed per subset."""
    labels = pd.read_csv(root / "labels.csv")
    folder = root / "base2novel"
    folder.mkdir(exist_ok=True)
    for name, ids in (("base", base), ("novel", novel)):
        subset = labels.set_index("id").loc[ids].reset_index(drop=True)
        pd.DataFrame({"id": range(len(ids)), "name": subset["name"]}).to_csv(folder / f"{name}_labels.csv", index=False)
        test = pd.read_csv(root / "test.csv")
        test = test[test["label"].isin(ids)].assign(label=lambda t: t["label"].map({old: new for new, old in enumerate(ids)}))
        test.to_csv(folder / f"{name}_test.csv", index=False)
    train = pd.read_csv(root / "train.csv")
    train = train[train["label"].isin(base)].assign(label=lambda t: t["label"].map({old: new for new, old in enumerate(base)}))
    for seed in seeds:
        train.sample(frac=1.0, random_state=seed).to_csv(folder / f"train_s{seed}.csv", index=False)


def tiny_recipe(data_root: Path, backbone: str, **sections) -> dict:
    """A recipe for the tiny model on a colour dataset: seconds per run on a CPU."""
    recipe = {
        "name": "tiny",
        "model": {"backbone": backbone},
        "adapter": {"bottleneck": 16, "blocks": [1, 2], "scale": 1.0},
        "loss": {"consistency_weight": 0.0},
        "data": {
            "root": str(data_root), "train_split": "train.csv", "train_labels": "labels.csv", "num_frames": 4,
            "input_size": 32, "resize_short_side": 36, "workers": 0,
            "color_jitter_probability": 0.0, "grayscale_probability": 0.0,
        },
        "optim": {"epochs": 2, "warmup_epochs": 0, "lr": 0.02, "batch_size": 4, "micro_batch_size": 2},
        "eval": {"views": "2x1", "sets": [{"name": "test", "split": "test.csv", "labels": "labels.csv"}], "zero_shot_baseline": False},
        "run": {"log_every_steps": 1, "deterministic": True},
    }
    for section, values in sections.items():
        recipe[section] = {**recipe.get(section, {}), **values} if isinstance(values, dict) else values
    return recipe


def write_recipe(path: Path, recipe: dict) -> str:
    path.write_text(yaml.safe_dump(recipe))
    return str(path)
