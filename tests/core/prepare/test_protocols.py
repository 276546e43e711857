"""Base-to-novel class split and draws, few-shot draws, K600's new classes: seeded and exact."""

from __future__ import annotations

import pandas as pd
import pytest

from msta_cli.core.prepare.annotations import Row
from msta_cli.core.prepare.kinetics import K400_TO_K600_RENAMES, new_k600_classes
from msta_cli.core.prepare.protocols import base2novel, base_novel_classes, fewshot, relabel, zeroshot
from tests.core.prepare.layouts import VIFI, vifi_labels

LABELS = [f"class {i}" for i in range(6)]


def rows(per_class: dict[int, int], prefix: str = "v") -> list[Row]:
    return [Row(f"{prefix}{label}_{i:02d}.mp4", label) for label, count in per_class.items() for i in range(count)]


def test_classes_sorted_by_training_count_ties_by_id_first_half_novel():
    listed = rows({0: 5, 1: 3, 2: 5, 3: 1, 4: 3, 5: 9})
    base, novel = base_novel_classes(listed, 6)
    assert novel == [3, 1, 4] and base == [0, 2, 5]
    assert base_novel_classes(rows({label: 70 for label in range(51)}), 51) == (list(range(25, 51)), list(range(25)))


def test_odd_class_count_gives_base_the_extra_class():
    assert [len(part) for part in base_novel_classes(rows({label: 4 for label in range(101)}), 101)] == [51, 50]


def test_base2novel_draws_are_seeded_independent_and_index_the_base_list():
    train, test = rows({label: 20 for label in range(6)}), rows({label: 3 for label in range(6)}, prefix="t")
    lists = base2novel(LABELS, train, train, test, seed=0)
    assert lists.labels == {"base2novel/base_labels.csv": LABELS[3:], "base2novel/novel_labels.csv": LABELS[:3]}
    draws = [lists.rows[f"base2novel/train_s{n}.csv"] for n in (1, 2, 3)]
    assert all(len(draw) == 48 and {row.label for row in draw} == {0, 1, 2} for draw in draws)
    assert all(row.path.startswith(("v3_", "v4_", "v5_")) for row in draws[0])
    assert draws[0] != draws[1] != draws[2]
    assert base2novel(LABELS, train, train, test, seed=0).rows == lists.rows
    assert base2novel(LABELS, train, train, test, seed=1).rows["base2novel/train_s1.csv"] != draws[0]
    assert lists.rows["base2novel/novel_test.csv"][:2] == [Row("t0_00.mp4", 0), Row("t0_01.mp4", 0)]
    assert len(lists.rows["base2novel/base_test.csv"]) == 9 and not lists.notes


def test_class_split_counts_the_official_list_but_draws_only_usable_videos():
    listed = rows({label: 20 for label in range(6)})
    usable = [row for row in listed if not (row.label == 5 and row.path >= "v5_10")]
    lists = base2novel(LABELS, listed, usable, [], seed=0)
    assert lists.labels["base2novel/base_labels.csv"] == LABELS[3:]
    assert sum(row.label == 2 for row in lists.rows["base2novel/train_s1.csv"]) == 10
    assert lists.notes == [
        "base2novel/train_s{1,2,3}.csv: 1 classes have fewer than 16 usable training videos, "
        "all of them taken: class 5 (10)"
    ]


def test_fewshot_k_per_class_for_every_class():
    train = rows({label: 20 for label in range(6)})
    lists = fewshot(LABELS, train, seed=0)
    for shots in (2, 4, 8, 16):
        drawn = lists.rows[f"fewshot/train_k{shots}.csv"]
        assert [sum(row.label == label for row in drawn) for label in range(6)] == [shots] * 6
    assert fewshot(LABELS, train, seed=0).rows == lists.rows


def test_relabel_keeps_only_the_mapped_classes():
    assert relabel([Row("b", 2), Row("a", 0), Row("c", 1)], {2: 0, 0: 1}) == [Row("b", 0), Row("a", 1)]


@pytest.mark.skipif(not VIFI.is_dir(), reason=f"shared ViFi-CLIP lists not found at {VIFI}")
def test_k600_has_220_new_classes_and_vifi_zero_shot_splits_draw_from_them():
    k400, k600 = vifi_labels("kinetics_400_labels.csv"), vifi_labels("kinetics_600_labels.csv")
    new = new_k600_classes(k600, k400)
    assert (
        len(new) == 220 and set(K400_TO_K600_RENAMES.values()) <= set(k600) and set(K400_TO_K600_RENAMES) <= set(k400)
    )
    for split in (1, 2, 3):
        assert set(pd.read_csv(VIFI / "labels" / f"ZS_split{split}_K600.csv")["name"]) <= set(new)
    lists = zeroshot(k600, new, [Row("x.mp4", k600.index(new[0]))], seed=0)
    assert all(len(names) == 160 for names in lists.labels.values())
