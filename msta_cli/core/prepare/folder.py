"""A user's own videos as `<root>/<class name>/<video file>`, split into train/test by class."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import Annotations, Problem, Row, layout_error, walk_files
from msta_cli.core.prepare.options import PrepareOptions
from msta_cli.core.video_files import is_video_file

EXPECTED = "<root>/<class name>/<video file> (one folder per class; class folders may nest videos deeper)"
NOT_IN_A_CLASS = "not in a class folder: move it into <class name>/ below SOURCE to use it"


def read_folder(source: Path, options: PrepareOptions) -> Annotations:
    """Classes are the sorted folder names; all videos form one list, which `split_folder` divides once checked.

    Videos directly in SOURCE have no class: they become problems, so they are counted and listed.
    """
    if not 0 <= options.test_fraction <= 1:
        raise InputError(f"--test-fraction must be between 0 and 1, got {options.test_fraction}")
    videos: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for path in walk_files(source) if source.is_dir() else []:
        if not is_video_file(path):
            continue
        if "/" in path:
            videos.setdefault(path.split("/")[0], []).append(path)
        else:
            problems.append(Problem(path, NOT_IN_A_CLASS))
    if not videos:
        raise layout_error("a folder dataset", source, EXPECTED)
    labels = sorted(videos)
    rows = [Row(path, label) for label, name in enumerate(labels) for path in videos[name]]
    return Annotations(
        labels=labels, splits={"videos": rows}, train_split="train", test_split="test", problems=problems
    )


def split_folder(rows: list[Row], options: PrepareOptions) -> dict[str, list[Row]]:
    """train and test from the videos that passed the check, per class, seeded: each class's shuffled videos
    go `videos_for_test` to test and the rest to train. A fraction of 0 gives only train, 1 only test."""
    by_class: dict[int, list[Row]] = {}
    for row in sorted(rows):
        by_class.setdefault(row.label, []).append(row)
    rng = random.Random(f"{options.seed}:folder-split")
    splits: dict[str, list[Row]] = {"train": [], "test": []}
    for label in sorted(by_class):
        shuffled = rng.sample(by_class[label], len(by_class[label]))
        cut = videos_for_test(len(shuffled), options.test_fraction)
        splits["test"] += shuffled[:cut]
        splits["train"] += shuffled[cut:]
    wanted = {"train": options.test_fraction < 1, "test": options.test_fraction > 0}
    return {split: sorted(split_rows) for split, split_rows in splits.items() if wanted[split]}


def videos_for_test(videos: int, fraction: float) -> int:
    """A class's test videos: videos x fraction rounded half up (2.5 -> 3, not Python's 2), computed on the
    fraction as typed (0.3, not 0.29999...); with 0 < fraction < 1, a class of two or more videos keeps at
    least one in each split."""
    count = int((Decimal(str(fraction)) * videos).to_integral_value(rounding=ROUND_HALF_UP))
    if 0 < fraction < 1 and videos >= 2:
        return min(max(count, 1), videos - 1)
    return count
