"""HMDB51's official layout: `<class>/<video>.avi` and `testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`."""

from __future__ import annotations

from pathlib import Path

from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import Annotations, Row, find_annotation, read_fields
from msta_cli.core.prepare.options import PrepareOptions
from msta_cli.core.video_files import is_macos_artefact

EXPECTED = (
    "testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt and <class>/<video>.avi folders "
    "(extracted from hmdb51_org.rar and test_train_splits.rar, or those two archives)"
)
SPLIT_IDS = {"1": "train", "2": "test"}  # 0 = unused in that split
# The class ids every benchmark list uses (ViFi-CLIP, X-CLIP, ...): sorted folder names, except that kick_ball
# precedes kick and sword_exercise precedes sword while climb precedes climb_stairs, which no sort key gives.
BENCHMARK_ORDER = (
    "brush_hair",
    "cartwheel",
    "catch",
    "chew",
    "clap",
    "climb",
    "climb_stairs",
    "dive",
    "draw_sword",
    "dribble",
    "drink",
    "eat",
    "fall_floor",
    "fencing",
    "flic_flac",
    "golf",
    "handstand",
    "hit",
    "hug",
    "jump",
    "kick_ball",
    "kick",
    "kiss",
    "laugh",
    "pick",
    "pour",
    "pullup",
    "punch",
    "push",
    "pushup",
    "ride_bike",
    "ride_horse",
    "run",
    "shake_hands",
    "shoot_ball",
    "shoot_bow",
    "shoot_gun",
    "sit",
    "situp",
    "smile",
    "smoke",
    "somersault",
    "stand",
    "swing_baseball",
    "sword_exercise",
    "sword",
    "talk",
    "throw",
    "turn",
    "walk",
    "wave",
)


def read_hmdb51(source: Path, options: PrepareOptions) -> Annotations:
    """Labels in the benchmark's id order, with spaces for underscores ("brush hair")."""
    folder = find_annotation(source, "*_test_split1.txt", "hmdb51", EXPECTED).parent
    found = [path.name for path in folder.glob("*_test_split1.txt") if not is_macos_artefact(path.name)]
    classes, notes = _class_order([name.removesuffix("_test_split1.txt") for name in found])
    splits: dict[str, list[Row]] = {}
    for number in (1, 2, 3):
        rows: dict[str, list[Row]] = {"train": [], "test": []}
        for label, name in enumerate(classes):
            path = folder / f"{name}_test_split{number}.txt"
            if not path.is_file():
                raise InputError(f"{path} is missing: every class needs split files 1, 2 and 3 ({EXPECTED})")
            for where, (video, flag) in read_fields(path, 2):
                if flag not in ("0", "1", "2"):
                    raise InputError(f"{where}: the split id must be 0 (unused), 1 (train) or 2 (test), found {flag!r}")
                if flag in SPLIT_IDS:
                    rows[SPLIT_IDS[flag]].append(Row(f"{name}/{video}", label))
        splits[f"train_{number}"] = rows["train"]
        splits[f"test_{number}"] = rows["test"]
    labels = [name.replace("_", " ") for name in classes]
    return Annotations(labels=labels, splits=splits, train_split="train_1", test_split="test_1", notes=notes)


def _class_order(classes: list[str]) -> tuple[list[str], list[str]]:
    """The classes in benchmark order, or sorted with a note when some are not HMDB51's."""
    rank = {name: index for index, name in enumerate(BENCHMARK_ORDER)}
    unknown = sorted(set(classes) - set(rank))
    if not unknown:
        return sorted(classes, key=rank.__getitem__), []
    return sorted(classes), [
        f"{len(unknown)} split files name classes HMDB51 does not have ({', '.join(unknown[:3])}); "
        "ids follow sorted names"
    ]
