"""A user's own videos as `<root>/<class name>/<video file>`, split into train/test by class."""

from __future__ import annotations

import random
from pathlib import Path

from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import Annotations, Row, is_video, layout_error, walk_files
from msta_cli.core.prepare.options import PrepareOptions

EXPECTED = "<root>/<class name>/<video file> (one folder per class; class folders may nest videos deeper)"


def read_folder(source: Path, options: PrepareOptions) -> Annotations:
    """Classes are the sorted folder names; each class's videos are split at `test_fraction`, seeded."""
    if not 0 <= options.test_fraction <= 1:
        raise InputError(f"--test-fraction must be between 0 and 1, got {options.test_fraction}")
    videos: dict[str, list[str]] = {}
    for path in walk_files(source) if source.is_dir() else []:
        if is_video(path) and "/" in path:
            videos.setdefault(path.split("/")[0], []).append(path)
    if not videos:
        raise layout_error("a folder dataset", source, EXPECTED)
    labels = sorted(videos)
    rng = random.Random(f"{options.seed}:folder-split")
    splits: dict[str, list[Row]] = {"train": [], "test": []}
    for label, name in enumerate(labels):
        shuffled = rng.sample(videos[name], len(videos[name]))
        cut = round(len(shuffled) * options.test_fraction)
        splits["test"] += [Row(path, label) for path in shuffled[:cut]]
        splits["train"] += [Row(path, label) for path in shuffled[cut:]]
    splits = {split: sorted(rows) for split, rows in splits.items() if rows}
    return Annotations(labels=labels, splits=splits, train_split="train", test_split="test")
