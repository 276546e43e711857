"""The videos a training run learns from: its class names and lists, read and checked up front.

Everything here runs before a run directory is written, so bad input exits with 2 and leaves
nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from msta_cli.core.config import Config
from msta_cli.core.data.decoding import resolve_backend
from msta_cli.core.data.lists import read_labels, read_split
from msta_cli.core.errors import InputError
from msta_cli.core.evaluation.evaluator import video_root

# Protocols whose runs train on exactly K videos per class: best-on-val may not take them away.
FIXED_SHOT_PROTOCOLS = ("fewshot", "base2novel")


@dataclass
class TrainingData:
    class_names: list[str]
    train: pd.DataFrame
    validation: pd.DataFrame | None
    video_root: Path
    notes: list[str] = field(default_factory=list)  # what a user should know about the lists, shown at the run's start


def load_training_data(config: Config) -> TrainingData:
    """Read and check the training lists and the video backend before anything is written (bad input -> exit 2)."""
    resolve_backend(config.data.video_backend)
    root = Path(config.data.root)
    if not root.is_dir():  # before "labels.csv: file not found", which does not say what to do
        raise InputError(
            f"data.root {root}: folder not found; write it with `msta prepare DATASET SOURCE --out {root}` "
            f"(the synthetic world: `msta prepare synthetic {root}`), or set data.root=FOLDER (a relative path "
            "is read from the current folder)"
        )
    class_names = read_labels(root / config.data.train_labels)
    split = read_split(root / config.data.train_split, len(class_names))
    notes = _label_conflicts(split, root / config.data.train_split)
    validation = None
    evaluation = config.eval
    check_model_selection(config)
    if evaluation.model_selection == "best-on-val":
        if evaluation.val_split:
            validation = draw_validation(
                split, class_names, root / evaluation.val_split, root / evaluation.val_labels,
                evaluation.val_fraction, config.seed,
            )
        else:
            split, validation = hold_out(split, evaluation.val_fraction, config.seed)
    return TrainingData(class_names, split, validation, video_root(root), notes)


def _label_conflicts(split: pd.DataFrame, path: Path) -> list[str]:
    """A training list may repeat a video to weight it, but one video under two classes is
    almost always a mistake; it is not refused, since some published lists (Kinetics') hold a
    few such videos, but it is shown."""
    labels = split.groupby("path")["label"].nunique()
    conflicting = labels[labels > 1].index.tolist()
    if not conflicting:
        return []
    examples = ", ".join(conflicting[:3]) + (f" and {len(conflicting) - 3} more" if len(conflicting) > 3 else "")
    return [f"{path}: {len(conflicting)} video(s) listed under more than one class ({examples}); each row trains as listed"]


def check_model_selection(config: Config) -> None:
    """best-on-val in a K-shot protocol needs its validation from another list (checked without reading data)."""
    if config.eval.model_selection == "best-on-val" and not config.eval.val_split and config.protocol.kind in FIXED_SHOT_PROTOCOLS:
        raise InputError(
            f"eval.model_selection best-on-val: a {config.protocol.kind} run trains on exactly K videos per "
            "class, and holding validation videos out of them would train on fewer; set eval.val_split to "
            "the list its K-shot lists were drawn from (e.g. eval.val_split=train_1.csv for HMDB51 and "
            "UCF101, train.csv for SSv2), whose other videos of the training classes then validate"
        )


def hold_out(split: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded per-class slice of the training videos for best-on-val, at least one per class
    that has two or more (one video is kept for training).

    A video the list repeats (to weight it) is held out whole and once: never in both lists.
    """
    videos = split.drop_duplicates("path")
    held = _drawn_per_class(videos, fraction, seed, keep_one=True)
    validation = videos[videos["path"].isin(held)].reset_index(drop=True)
    return split[~split["path"].isin(held)].reset_index(drop=True), validation


def draw_validation(
    train: pd.DataFrame, class_names: list[str], pool_path: Path, pool_labels_path: Path, fraction: float, seed: int
) -> pd.DataFrame:
    """best-on-val's videos from another list (the split the K-shot lists were drawn from): per
    training class, a seeded `fraction` (at least one) of its videos the training list does not
    hold, labelled with the training classes' ids, matched by name (a base-to-novel run's base
    ids differ from the full list's). Classes the run does not train on never validate."""
    pool_names = read_labels(pool_labels_path)
    pool = read_split(pool_path, len(pool_names)).drop_duplicates("path")
    ids = {name: index for index, name in enumerate(class_names)}
    pool = pool.assign(label=[ids.get(pool_names[label], -1) for label in pool["label"]])
    pool = pool[(pool["label"] >= 0) & ~pool["path"].isin(set(train["path"]))]
    missing = [name for index, name in enumerate(class_names) if not (pool["label"] == index).any()]
    if missing:
        raise InputError(
            f"eval.val_split {pool_path}: no video outside the training list for {len(missing)} of the "
            f"{len(class_names)} training classes ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}; "
            f"classes are matched by name through {pool_labels_path}); best-on-val needs some of every class"
        )
    held = _drawn_per_class(pool, fraction, seed, keep_one=False)
    return pool[pool["path"].isin(held)].reset_index(drop=True)


def _drawn_per_class(videos: pd.DataFrame, fraction: float, seed: int, keep_one: bool) -> list[str]:
    """Seeded: round(fraction * n) of each class's n videos, at least one (none where `keep_one`
    and the class has a single video)."""
    rng = np.random.default_rng(seed)
    drawn = []
    for _, group in videos.groupby("label", sort=True):
        count = 0 if keep_one and len(group) < 2 else max(1, round(len(group) * fraction))
        drawn.extend(rng.choice(group["path"].to_numpy(), size=count, replace=False).tolist())
    return drawn
