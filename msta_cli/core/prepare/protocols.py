"""The benchmark protocols of DATASETS.md: base-to-novel, few-shot and K600 zero-shot lists.

Sampling is seeded by strings (`"{seed}:fewshot:k16"`), which Python hashes the same on every
platform and version, so the same seed gives byte-identical lists. Videos are drawn only from
the usable (found and checked) videos of the split-1 training list.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable

from msta_cli.core.prepare.annotations import Lists, Row, name_some

BASE2NOVEL_SHOTS = 16
BASE2NOVEL_DRAWS = (1, 2, 3)
FEWSHOT_SHOTS = (2, 4, 8, 16)
ZEROSHOT_SPLITS = (1, 2, 3)
ZEROSHOT_CLASSES = 160


def base_novel_classes(listed_train: list[Row], num_labels: int) -> tuple[list[int], list[int]]:
    """(base, novel) label ids: classes sorted by official split-1 training count, ties by id; the first half is novel.

    Counts come from the official list, not from the videos this copy has, so the split is
    the same for everyone. Both lists keep the sorted order, as the ViFi-CLIP label lists do.
    """
    counts = Counter(row.label for row in listed_train)
    order = sorted(range(num_labels), key=lambda label: (counts[label], label))
    half = num_labels // 2
    return order[half:], order[:half]


def base2novel(labels: list[str], listed_train: list[Row], train: list[Row], test: list[Row], seed: int) -> Lists:
    """Base/novel label lists, three 16-shot base training draws, and the base and novel test lists."""
    base, novel = base_novel_classes(listed_train, len(labels))
    lists = Lists()
    for part, classes in (("base", base), ("novel", novel)):
        ids = {label: index for index, label in enumerate(classes)}
        lists.labels[f"base2novel/{part}_labels.csv"] = [labels[label] for label in classes]
        lists.rows[f"base2novel/{part}_test.csv"] = relabel(test, ids)
    base_ids = {label: index for index, label in enumerate(base)}
    for draw in BASE2NOVEL_DRAWS:
        rng = random.Random(f"{seed}:base2novel:s{draw}")
        lists.rows[f"base2novel/train_s{draw}.csv"] = relabel(_sample(train, base, BASE2NOVEL_SHOTS, rng), base_ids)
    lists.notes += _shortage("base2novel/train_s{1,2,3}.csv", train, base, BASE2NOVEL_SHOTS, labels)
    return lists


def fewshot(labels: list[str], train: list[Row], seed: int) -> Lists:
    """K-shot training lists over all classes for K in 2, 4, 8, 16 (independent draws)."""
    lists = Lists()
    classes = range(len(labels))
    for shots in FEWSHOT_SHOTS:
        name = f"fewshot/train_k{shots}.csv"
        lists.rows[name] = _sample(train, classes, shots, random.Random(f"{seed}:fewshot:k{shots}"))
        lists.notes += _shortage(name, train, classes, shots, labels)
    return lists


def zeroshot(labels: list[str], new_classes: list[str], test: list[Row], seed: int) -> Lists:
    """Three seeded draws of 160 of the new classes (the pipeline checks there are enough); each lists their test
    videos, relabelled in name order."""
    lists = Lists()
    ids = {name: label for label, name in enumerate(labels)}
    for split in ZEROSHOT_SPLITS:
        chosen = sorted(random.Random(f"{seed}:zeroshot:{split}").sample(new_classes, ZEROSHOT_CLASSES))
        lists.labels[f"zeroshot/split_{split}_labels.csv"] = chosen
        lists.rows[f"zeroshot/split_{split}.csv"] = relabel(
            test, {ids[name]: index for index, name in enumerate(chosen)}
        )
    return lists


def relabel(rows: list[Row], ids: dict[int, int]) -> list[Row]:
    """The rows of the classes in `ids`, with their new labels, sorted by new label then path."""
    return sorted(
        (Row(row.path, ids[row.label]) for row in rows if row.label in ids), key=lambda row: (row.label, row.path)
    )


def _sample(rows: list[Row], classes: Iterable[int], shots: int, rng: random.Random) -> list[Row]:
    """`shots` rows per class (all of them where a class has fewer), in class order, each class's rows sorted."""
    by_class = _by_class(rows)
    sampled: list[Row] = []
    for label in classes:
        group = by_class[label]
        sampled += sorted(rng.sample(group, min(shots, len(group))))
    return sampled


def _shortage(name: str, rows: list[Row], classes: Iterable[int], shots: int, labels: list[str]) -> list[str]:
    """A note naming the classes with fewer than `shots` usable videos, if any."""
    by_class = _by_class(rows)
    short = [f"{labels[label]} ({len(by_class[label])})" for label in classes if len(by_class[label]) < shots]
    if not short:
        return []
    return [
        f"{name}: {len(short)} classes have fewer than {shots} usable training videos, all of them taken: "
        + name_some(short)
    ]


def _by_class(rows: list[Row]) -> defaultdict[int, list[Row]]:
    """Rows grouped by label, each group sorted by path (the order sampling starts from)."""
    by_class: defaultdict[int, list[Row]] = defaultdict(list)
    for row in sorted(rows):
        by_class[row.label].append(row)
    return by_class
