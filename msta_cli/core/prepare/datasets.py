"""The datasets `msta prepare` knows: how to read each, which protocols it has, where its archives are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from msta_cli.core.prepare.annotations import Annotations, Lists, Row
from msta_cli.core.prepare.download import OFFICIAL_ARCHIVES, OfficialArchive
from msta_cli.core.prepare.folder import read_folder, split_folder
from msta_cli.core.prepare.hmdb51 import read_hmdb51
from msta_cli.core.prepare.kinetics import read_kinetics
from msta_cli.core.prepare.options import PrepareOptions
from msta_cli.core.prepare.ssv2 import read_ssv2
from msta_cli.core.prepare.ucf101 import read_ucf101


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's reader, the protocol lists DATASETS.md defines for it, and its official archives.

    `split`, for a dataset without official splits: divides the one list the reader gives (with the label
    names, for its notes), once its videos are checked, so that the split is made of usable videos only.
    """

    read: Callable[[Path, PrepareOptions], Annotations]
    protocols: frozenset[str]
    num_classes: int | None
    archives: tuple[OfficialArchive, ...] = ()
    split: Callable[[list[Row], list[str], PrepareOptions], Lists] | None = None


DATASETS = {
    "hmdb51": DatasetSpec(read_hmdb51, frozenset({"base2novel", "fewshot"}), 51, OFFICIAL_ARCHIVES["hmdb51"]),
    "ucf101": DatasetSpec(read_ucf101, frozenset({"base2novel", "fewshot"}), 101, OFFICIAL_ARCHIVES["ucf101"]),
    "kinetics400": DatasetSpec(read_kinetics, frozenset({"base2novel"}), 400),
    "kinetics600": DatasetSpec(read_kinetics, frozenset({"zeroshot"}), 600),
    "ssv2": DatasetSpec(read_ssv2, frozenset({"base2novel", "fewshot"}), 174),
    "folder": DatasetSpec(read_folder, frozenset(), None, split=split_folder),
}
