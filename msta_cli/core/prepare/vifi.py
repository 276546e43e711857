"""Import the ViFi-CLIP benchmark lists, so msta evaluates on exactly the published videos and classes.

A ViFi-CLIP checkout (or a copy of its `labels/` and `datasets_splits/` folders) holds label
lists `id,name` and split lists of `<relative video path> <int label>` lines. Each group of lists
(test splits, few-shot, base-to-novel, K600 zero-shot) is imported whole when all its files are
there; a group with no file at all is sampled by msta instead, and a partial group is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from msta_cli.core.data.lists import read_labels
from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import Lists, Row, parse_label, read_fields

FULL_LABELS = "labels.csv"


@dataclass(frozen=True)
class ViFiNames:
    """Where a dataset's lists live in a ViFi-CLIP checkout and which msta split each test list becomes."""

    splits: str
    labels: str
    base_novel_prefix: str
    tests: dict[str, str]


VIFI_NAMES = {
    "hmdb51": ViFiNames(
        "hmdb_splits", "hmdb_51_labels.csv", "hmdb_51", {f"val{n}.txt": f"test_{n}.csv" for n in (1, 2, 3)}
    ),
    "ucf101": ViFiNames(
        "ucf_splits", "ucf_101_labels.csv", "ucf_101", {f"val{n}.txt": f"test_{n}.csv" for n in (1, 2, 3)}
    ),
    "kinetics400": ViFiNames("k400_splits", "kinetics_400_labels.csv", "kinetics_400", {"val.txt": "val.csv"}),
    "kinetics600": ViFiNames("k600_splits", "kinetics_600_labels.csv", "kinetics_600", {}),
    "ssv2": ViFiNames("ssv2_splits", "ssv2_labels.csv", "ssv2_174", {"validation.txt": "val.csv"}),
}


@dataclass(frozen=True)
class Group:
    """Lists imported together.

    `rows`: msta list file -> (ViFi-CLIP list, the msta label file its labels index);
    `labels`: msta label file -> ViFi-CLIP label file.
    """

    name: str
    rows: dict[str, tuple[str, str]]
    labels: dict[str, str]


def require_vifi_lists(dataset: str) -> None:
    """Refuse --vifi-clip-splits up front for a dataset ViFi-CLIP publishes no lists for."""
    if dataset not in VIFI_NAMES:
        raise InputError(
            f"--vifi-clip-splits: ViFi-CLIP publishes lists for {', '.join(VIFI_NAMES)} only, not {dataset}; "
            "leave the option out to let msta sample the lists"
        )


def groups(dataset: str, protocols: frozenset[str]) -> list[Group]:
    """The ViFi-CLIP list groups that can stand in for msta's lists of `dataset`."""
    names = VIFI_NAMES[dataset]
    found = [Group("splits", {out: (f"{names.splits}/{vifi}", FULL_LABELS) for vifi, out in names.tests.items()}, {})]
    if "fewshot" in protocols:
        shots = {
            f"fewshot/train_k{k}.csv": (f"{names.splits}/train1_few_shot_{k}.txt", FULL_LABELS) for k in (2, 4, 8, 16)
        }
        found.append(Group("fewshot", shots, {}))
    if "base2novel" in protocols:
        folder = f"base2novel_splits/{names.splits}"
        base, novel = "base2novel/base_labels.csv", "base2novel/novel_labels.csv"
        rows = {f"base2novel/train_s{n}.csv": (f"{folder}/fs_base_s{n}_train.txt", base) for n in (1, 2, 3)}
        rows |= {
            "base2novel/base_test.csv": (f"{folder}/base_val.txt", base),
            "base2novel/novel_test.csv": (f"{folder}/novel_val.txt", novel),
        }
        prefix = names.base_novel_prefix
        found.append(
            Group("base2novel", rows, {base: f"{prefix}_base_labels.csv", novel: f"{prefix}_novel_labels.csv"})
        )
    if "zeroshot" in protocols:
        rows = {
            f"zeroshot/split_{n}.csv": (f"k600_splits/ZS_split{n}_K600_eval.txt", f"zeroshot/split_{n}_labels.csv")
            for n in (1, 2, 3)
        }
        found.append(
            Group("zeroshot", rows, {f"zeroshot/split_{n}_labels.csv": f"ZS_split{n}_K600.csv" for n in (1, 2, 3)})
        )
    return [group for group in found if group.rows]


def read_vifi(vifi_dir: Path, dataset: str, labels: list[str], protocols: frozenset[str]) -> tuple[Lists, list[str]]:
    """The ViFi-CLIP lists for `dataset` (row paths as ViFi names them) and the names of the groups imported.

    Checks that ViFi-CLIP's full label list is ours, id for id: otherwise its labels would mean other classes.
    """
    require_vifi_lists(dataset)
    label_dir = vifi_dir / "labels"
    list_dir = vifi_dir / "datasets_splits" if (vifi_dir / "datasets_splits").is_dir() else vifi_dir
    full = label_dir / VIFI_NAMES[dataset].labels
    if not full.is_file():
        raise InputError(
            f"{vifi_dir} does not look like ViFi-CLIP's lists: expected labels/{full.name} and datasets_splits/"
        )
    _require_same_labels(full, labels)
    lists, imported = Lists(), []
    for group in groups(dataset, protocols):
        files = [list_dir / vifi for vifi, _ in group.rows.values()] + [
            label_dir / name for name in group.labels.values()
        ]
        present = [path.is_file() for path in files]
        if not any(present):
            lists.notes.append(
                f"{vifi_dir} has no ViFi-CLIP lists for {group.name} (e.g. {files[0]}); msta wrote its own"
            )
            continue
        if not all(present):
            missing = ", ".join(str(path) for path, ok in zip(files, present, strict=True) if not ok)
            raise InputError(f"{vifi_dir} has only part of ViFi-CLIP's {group.name} lists; missing: {missing}")
        group_labels = {out: read_labels(label_dir / name) for out, name in group.labels.items()}
        lists.labels.update(group_labels)
        for out, (vifi, indexes) in group.rows.items():
            count = len(group_labels[indexes]) if indexes in group_labels else len(labels)
            lists.rows[out] = [
                Row(path, parse_label(label, where, count)) for where, (path, label) in read_fields(list_dir / vifi, 2)
            ]
        imported.append(group.name)
    if not imported:
        raise InputError(f"{vifi_dir} has no ViFi-CLIP lists for {dataset} below {list_dir}")
    return lists, imported


def _require_same_labels(path: Path, labels: list[str]) -> None:
    theirs = read_labels(path)
    if theirs != labels:
        differences = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in enumerate(zip(theirs, labels, strict=False)) if a != b][
            :5
        ]
        raise InputError(
            f"{path} does not match this dataset's labels ({len(theirs)} vs {len(labels)} classes; "
            f"first differences, ViFi-CLIP vs annotation: {'; '.join(differences) or 'none in the common part'})"
        )
