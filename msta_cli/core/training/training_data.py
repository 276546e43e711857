"""The videos a training run learns from: its class names and lists, read and checked up front.

Everything here runs before a run directory is written, so bad input exits with 2 and leaves
nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from msta_cli.core.config import Config
from msta_cli.core.data.decoding import resolve_backend
from msta_cli.core.data.lists import read_labels, read_split
from msta_cli.core.evaluation.evaluator import video_root


@dataclass
class TrainingData:
    class_names: list[str]
    train: pd.DataFrame
    validation: pd.DataFrame | None
    video_root: Path


def load_training_data(config: Config) -> TrainingData:
    """Read and check the training lists and the video backend before anything is written (bad input -> exit 2)."""
    resolve_backend(config.data.video_backend)
    root = Path(config.data.root)
    class_names = read_labels(root / config.data.train_labels)
    split = read_split(root / config.data.train_split, len(class_names))
    validation = None
    if config.eval.model_selection == "best-on-val":
        split, validation = hold_out(split, config.eval.val_fraction, config.seed)
    return TrainingData(class_names, split, validation, video_root(root))


def hold_out(split: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded per-class slice of the training videos for best-on-val, at least one per class.

    A video the list repeats (to weight it) is held out whole and once: never in both lists.
    """
    rng = np.random.default_rng(seed)
    videos = split.drop_duplicates("path")
    held = []
    for _, group in videos.groupby("label", sort=True):
        count = max(1, round(len(group) * fraction)) if len(group) > 1 else 0
        held.extend(rng.choice(group["path"].to_numpy(), size=count, replace=False).tolist())
    validation = videos[videos["path"].isin(held)].reset_index(drop=True)
    return split[~split["path"].isin(held)].reset_index(drop=True), validation
