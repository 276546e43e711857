"""UCF101's official layout: `UCF-101/<Class>/v_<Class>_gXX_cYY.avi` and `ucfTrainTestlist/`."""

from __future__ import annotations

from pathlib import Path

from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import (
    Annotations,
    Row,
    find_annotation,
    parse_int,
    parse_label,
    read_fields,
)
from msta_cli.core.prepare.options import PrepareOptions

EXPECTED = (
    "ucfTrainTestlist/classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt and UCF-101/<Class>/<video>.avi "
    "(extracted from UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip, or those two archives)"
)


def read_ucf101(source: Path, options: PrepareOptions) -> Annotations:
    """Labels in classInd order (CamelCase, 0-based); test lists get their label from the class folder."""
    class_file = find_annotation(source, "classInd.txt", "ucf101", EXPECTED)
    folder = class_file.parent
    entries = sorted((parse_int(number, where), name, where) for where, (number, name) in read_fields(class_file, 2))
    for expected_id, (number, _, where) in enumerate(entries, start=1):
        if number != expected_id:
            raise InputError(f"{where}: class ids must run 1..C without gaps; expected {expected_id}, found {number}")
    labels = [name for _, name, _ in entries]
    by_folder = {name.lower(): label for label, name in enumerate(labels)}
    splits: dict[str, list[Row]] = {}
    for number in (1, 2, 3):
        train = _require(folder / f"trainlist0{number}.txt")
        splits[f"train_{number}"] = [
            Row(path, parse_label(label, where, len(labels), first=1)) for where, (path, label) in read_fields(train, 2)
        ]
        test = _require(folder / f"testlist0{number}.txt")
        splits[f"test_{number}"] = [
            Row(path, _class_of(path, by_folder, where)) for where, (path,) in read_fields(test, 1)
        ]
    return Annotations(labels=labels, splits=splits, train_split="train_1", test_split="test_1")


def _require(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"{path} is missing ({EXPECTED})")
    return path


def _class_of(path: str, by_folder: dict[str, int], where: str) -> int:
    """The label of a test-list entry from its folder, case-insensitively (HandstandPushups vs HandStandPushups)."""
    folder = path.split("/")[0].lower()
    if folder not in by_folder:
        raise InputError(f"{where}: the folder of {path!r} is not a class in classInd.txt")
    return by_folder[folder]
