"""A user's own videos as `<root>/<class name>/<video file>`, split into train/test by class."""

from __future__ import annotations

import posixpath
import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import Annotations, Lists, Problem, Row, layout_error, name_some, walk_files
from msta_cli.core.prepare.options import PrepareOptions
from msta_cli.core.prepare.writer import written_files
from msta_cli.core.video_files import is_macos_artefact, is_video_file

EXPECTED = "<root>/<class name>/<video file> (one folder per class; class folders may nest videos deeper)"
NOT_IN_A_CLASS = "not in a class folder: move it into <class name>/ below SOURCE to use it"


def read_folder(source: Path, options: PrepareOptions) -> Annotations:
    """Classes are the sorted folder names; all videos form one list, which `split_folder` divides once checked.

    Videos directly in SOURCE have no class: they become problems, so they are counted and listed. Files
    without a video extension are counted in a note, so a container msta does not know is not lost unseen.
    """
    if not 0 <= options.test_fraction <= 1:
        raise InputError(f"--test-fraction must be between 0 and 1, got {options.test_fraction}")
    videos: dict[str, list[str]] = {}
    problems: list[Problem] = []
    skipped: dict[str, list[str]] = {}  # extension -> files
    own_outputs = {(options.out / name).absolute() for name in written_files(options.out)}  # --out inside SOURCE
    for path in walk_files(source).files if source.is_dir() else []:
        if (source / path).absolute() in own_outputs:
            continue
        if not is_video_file(path):
            if not posixpath.basename(path).startswith("."):
                skipped.setdefault(posixpath.splitext(path)[1].lower(), []).append(path)
        elif "/" in path:
            videos.setdefault(path.split("/")[0], []).append(path)
        else:
            problems.append(Problem(path, NOT_IN_A_CLASS))
    if not videos:
        raise layout_error("a folder dataset", source, EXPECTED)
    if len(videos) == 1:
        ((name, paths),) = videos.items()
        raise _one_class(source, name, paths)
    labels = sorted(videos)
    rows = [Row(path, label) for label, name in enumerate(labels) for path in videos[name]]
    return Annotations(
        labels=labels,
        splits={"videos": rows},
        train_split="train",
        test_split="test",
        notes=_skipped_note(skipped) + _not_classes_note(source, set(videos), options.out),
        problems=problems,
    )


def _not_classes_note(source: Path, classes: set[str], out: Path) -> list[str]:
    """A note naming the folders that became no class because they hold no video file: one whose
    videos are all in a container msta does not know would vanish, shifting the ids after it."""
    folders = sorted(
        entry.name for entry in source.iterdir()
        if entry.is_dir() and entry.name not in classes and not entry.name.startswith(".")
        and not is_macos_artefact(entry.name) and entry.absolute() != out.absolute()
    )
    if not folders:
        return []
    return [f"{len(folders)} folders hold no video file and are not classes: {name_some(folders)}"]


def split_folder(rows: list[Row], labels: list[str], options: PrepareOptions) -> Lists:
    """train.csv and test.csv from the videos that passed the check, per class, seeded: each class's shuffled
    videos go `videos_for_test` to test and the rest to train. A fraction of 0 gives only train, 1 only test.

    Notes name the classes a list has no video of: those with no usable video keep their id in labels.csv
    (ids stay those of the folder names), those with a single one are in one split only.
    """
    by_class: dict[int, list[Row]] = {}
    for row in sorted(rows):
        by_class.setdefault(row.label, []).append(row)
    rng = random.Random(f"{options.seed}:folder-split")
    splits: dict[str, list[Row]] = {"train": [], "test": []}
    only_in: dict[str, list[str]] = {"train": [], "test": []}
    for label in sorted(by_class):
        shuffled = rng.sample(by_class[label], len(by_class[label]))
        cut = videos_for_test(len(shuffled), options.test_fraction)
        splits["test"] += shuffled[:cut]
        splits["train"] += shuffled[cut:]
        if len(shuffled) == 1:
            only_in["test" if cut else "train"].append(labels[label])
    wanted = {"train": options.test_fraction < 1, "test": options.test_fraction > 0}
    lists = Lists(rows={f"{split}.csv": sorted(split_rows) for split, split_rows in splits.items() if wanted[split]})
    unused = [name for label, name in enumerate(labels) if label not in by_class]
    if unused:
        lists.notes.append(
            f"{len(unused)} classes have no usable video (see problems.csv) and are in no list; they keep their id "
            f"in labels.csv: {name_some(unused)}"
        )
    if all(wanted.values()):
        for split, other in (("train", "test"), ("test", "train")):
            if only_in[other]:
                lists.notes.append(
                    f"{split}.csv has no video of {len(only_in[other])} classes, whose single usable video is in "
                    f"{other}.csv: {name_some(only_in[other])}"
                )
    return lists


def videos_for_test(videos: int, fraction: float) -> int:
    """A class's test videos: videos x fraction rounded half up (2.5 -> 3, not Python's 2), computed on the
    fraction as typed (0.3, not 0.29999...); with 0 < fraction < 1, a class of two or more videos keeps at
    least one in each split."""
    count = int((Decimal(str(fraction)) * videos).to_integral_value(rounding=ROUND_HALF_UP))
    if 0 < fraction < 1 and videos >= 2:
        return min(max(count, 1), videos - 1)
    return count


def _one_class(source: Path, name: str, paths: list[str]) -> InputError:
    """One class cannot be classified; a single wrapper folder (`SOURCE/my_actions/<class>/`) usually is not one."""
    inner = sorted({path.split("/")[1] for path in paths if path.count("/") >= 2})
    hint = (
        f"; {name}/ has folders with videos ({name_some(inner)}): if they are the classes, make SOURCE {source / name}"
        if inner
        else ""
    )
    return InputError(
        f"{source} has videos in one class folder only ({name}/); a folder dataset needs at least 2 classes, "
        f"one folder per class below SOURCE{hint}"
    )


def _skipped_note(skipped: dict[str, list[str]]) -> list[str]:
    """A note counting the files skipped for their extension, with one example of each extension."""
    if not skipped:
        return []
    count = sum(len(paths) for paths in skipped.values())
    kinds = [f"{ext or 'no extension'} ({len(paths)}, e.g. {paths[0]})" for ext, paths in sorted(skipped.items())]
    note = (
        f"{count} files are not videos by their extension and were skipped: {name_some(kinds)} "
        "(docs/data.md lists the video extensions msta reads)"
    )
    return [note]
