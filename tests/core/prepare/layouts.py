"""Tiny copies of each dataset's official layout, with real file naming and annotation formats.

Videos are copies of one tiny template per container (encoding once keeps the tests fast);
`place` puts them, `placeholder` makes empty stand-ins for tests that run with --no-check.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from msta_cli.core.prepare.hmdb51 import BENCHMARK_ORDER
from tests.helpers.videos import damage_avi, truncate, write_not_a_video, write_video, write_zero_byte

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
VIFI = SHARED / "data" / "vifi-clip"


def template_videos(folder: Path) -> dict[str, Path]:
    """One 16-frame 32x64 video per container the tests use."""
    return {
        suffix: write_video(folder / f"template{suffix}", num_frames=16, size=(32, 64)) for suffix in (".avi", ".mp4")
    }


def place(templates: dict[str, Path], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(templates[path.suffix], path)
    return path


def placeholder(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def hmdb51_video(name: str, index: int) -> str:
    return f"Clip_{index}_{name}_f_cm_np1_le_goo_{index}.avi"


def build_hmdb51(root: Path, templates: dict[str, Path], per_class: int = 4) -> Path:
    """All 51 classes, `per_class` videos each; in split n video n-1 is test, the others train (all classes tie).

    Every class also lists one unused video (id 0) that is not on disk. Damaged in split-1 train:
    brush_hair #1 empty, cartwheel #1 a cut AVI, chew #1 not a video, catch #2 missing.
    """
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for name in sorted(BENCHMARK_ORDER):
        for index in range(per_class):
            place(templates, root / "hmdb51_org" / name / hmdb51_video(name, index))
        for split in (1, 2, 3):
            lines = [f"{hmdb51_video(name, i)} {2 if i == split - 1 else 1} \n" for i in range(per_class)]
            lines.append(f"{hmdb51_video(name, 99)} 0 \n")
            (splits / f"{name}_test_split{split}.txt").write_text("".join(lines))
    videos = root / "hmdb51_org"
    write_zero_byte(videos / "brush_hair" / hmdb51_video("brush_hair", 1))
    damage_avi(videos / "cartwheel" / hmdb51_video("cartwheel", 1))
    write_not_a_video(videos / "chew" / hmdb51_video("chew", 1))
    (videos / "catch" / hmdb51_video("catch", 2)).unlink()
    return root


UCF101_CLASSES = ("ApplyEyeMakeup", "HandstandPushups", "YoYo")


def build_ucf101(root: Path, templates: dict[str, Path]) -> Path:
    """Three classes, groups g01-g03 with two clips each; split n tests group n.

    HandstandPushups keeps UCF101's quirk: files v_HandStandPushups_*, folder HandStandPushups on disk.
    """
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {name}\r\n" for i, name in enumerate(UCF101_CLASSES, start=1)))
    for split in (1, 2, 3):
        train, test = [], []
        for label, name in enumerate(UCF101_CLASSES, start=1):
            stem = "HandStandPushups" if name == "HandstandPushups" else name
            for group in (1, 2, 3):
                for clip in (1, 2):
                    listed = f"{name}/v_{stem}_g{group:02d}_c{clip:02d}.avi"
                    (test if group == split else train).append(listed if group == split else f"{listed} {label}")
        (lists / f"trainlist0{split}.txt").write_text("\r\n".join(train) + "\r\n")
        (lists / f"testlist0{split}.txt").write_text("\r\n".join(test) + "\r\n")
    for name in UCF101_CLASSES:
        stem = "HandStandPushups" if name == "HandstandPushups" else name
        for group in (1, 2, 3):
            for clip in (1, 2):
                place(templates, root / "UCF-101" / stem / f"v_{stem}_g{group:02d}_c{clip:02d}.avi")
    return root


KINETICS_CLASSES = ("abseiling", "massaging person's head", "passing American football (in game)")


def build_kinetics(root: Path, templates: dict[str, Path]) -> Path:
    """K400-style CSVs, 4 train and 2 val rows per class, videos in `<split>/<label>/`.

    Two rows have no video (`absent...`) and one train video is truncated.
    """
    tables = {}
    for split, count in (("train", 4), ("validate", 2)):
        rows = []
        for label in KINETICS_CLASSES:
            for i in range(count):
                youtube_id = f"{split[:2]}{KINETICS_CLASSES.index(label)}{i}_-x_Yz"
                rows.append(
                    {
                        "label": label,
                        "youtube_id": youtube_id,
                        "time_start": 10 * i,
                        "time_end": 10 * i + 10,
                        "split": split,
                        "is_cc": 0,
                    }
                )
        tables[split] = pd.DataFrame(rows)
    tables["train"].loc[len(tables["train"])] = ["abseiling", "absent_train", 0, 10, "train", 0]
    tables["validate"].loc[len(tables["validate"])] = ["abseiling", "absent_val", 5, 15, "validate", 0]
    annotations = root / "annotations"
    annotations.mkdir(parents=True)
    for split, table in tables.items():
        table.to_csv(annotations / f"{split}.csv", index=False)
        folder = "val" if split == "validate" else split
        for row in table.itertuples():
            if not row.youtube_id.startswith("absent"):
                place(
                    templates,
                    root / folder / row.label / f"{row.youtube_id}_{row.time_start:06d}_{row.time_end:06d}.mp4",
                )
    truncate(root / "train" / "abseiling" / "tr00_-x_Yz_000000_000010.mp4", 0.4)
    return root


SSV2_TEMPLATES = (
    "Holding [something] next to [something]",
    "Pushing [something] from left to right",
    "Tearing [something] into two pieces",
)


def build_ssv2(root: Path, make_webm) -> Path:
    """labels.json, train.json (3 per class) and validation.json (1 per class); `make_webm(path)` writes a video."""
    names = sorted(t.replace("[", "").replace("]", "") for t in SSV2_TEMPLATES)
    root.mkdir(parents=True)
    (root / "something-something-v2-labels.json").write_text(json.dumps({name: str(i) for i, name in enumerate(names)}))
    video_id = 100
    for split, count in (("train", 3), ("validation", 1)):
        items = []
        for template in SSV2_TEMPLATES:
            for _ in range(count):
                items.append(
                    {"id": str(video_id), "label": template.lower(), "template": template, "placeholders": ["a cup"]}
                )
                make_webm(root / "20bn-something-something-v2" / f"{video_id}.webm")
                video_id += 1
        (root / f"something-something-v2-{split}.json").write_text(json.dumps(items))
    return root


def build_folder(root: Path, templates: dict[str, Path], classes=("cat", "dog", "fish"), per_class: int = 5) -> Path:
    for name in classes:
        for i in range(per_class):
            place(templates, root / name / f"{name}_{i}.mp4")
    (root / "README.txt").write_text("not a video\n")
    return root


def vifi_list(path: Path) -> list[tuple[str, int]]:
    return [
        (line.rsplit(maxsplit=1)[0], int(line.rsplit(maxsplit=1)[1]))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def vifi_labels(name: str) -> list[str]:
    return list(pd.read_csv(VIFI / "labels" / name)["name"])


def _vifi_videos(dataset: str, labels: list[str]) -> tuple[dict[str, int], dict[int, list[str]]]:
    """Every video ViFi-CLIP's lists name, with its class, and the test videos of splits 1-3."""
    lists = VIFI / "datasets_splits"
    videos: dict[str, int] = {}
    for path in sorted((lists / f"{dataset}_splits").glob("*.txt")):
        videos |= dict(vifi_list(path))
    base = vifi_labels(f"{'hmdb_51' if dataset == 'hmdb' else 'ucf_101'}_base_labels.csv")
    for path in (lists / "base2novel_splits" / f"{dataset}_splits").glob("base_*.txt"):
        videos |= {video: labels.index(base[label]) for video, label in vifi_list(path)}
    tests = {
        split: [video for video, _ in vifi_list(lists / f"{dataset}_splits" / f"val{split}.txt")] for split in (1, 2, 3)
    }
    return videos, tests


def build_hmdb51_from_vifi(root: Path) -> Path:
    """HMDB51's official layout naming every video ViFi-CLIP's lists name (empty placeholders)."""
    labels = vifi_labels("hmdb_51_labels.csv")
    videos, tests = _vifi_videos("hmdb", labels)
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for label, name in enumerate(labels):
        folder = name.replace(" ", "_")
        mine = sorted(video for video, video_label in videos.items() if video_label == label)
        for video in mine:
            placeholder(root / "hmdb51_org" / folder / video)
        for split in (1, 2, 3):
            test = set(tests[split])
            lines = "".join(f"{video} {2 if video in test else 1}\n" for video in mine)
            (splits / f"{folder}_test_split{split}.txt").write_text(lines)
    return root


def build_ucf101_from_vifi(root: Path) -> Path:
    """UCF101's official layout naming every video ViFi-CLIP's lists name (empty placeholders)."""
    labels = vifi_labels("ucf_101_labels.csv")
    videos, tests = _vifi_videos("ucf", labels)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(labels, start=1)))
    for video, label in videos.items():
        placeholder(root / "UCF-101" / labels[label] / video)
    for split in (1, 2, 3):
        test = set(tests[split])
        train_lines = "".join(
            f"{labels[label]}/{video} {label + 1}\n" for video, label in sorted(videos.items()) if video not in test
        )
        (lists / f"trainlist0{split}.txt").write_text(train_lines)
        (lists / f"testlist0{split}.txt").write_text(
            "".join(f"{labels[videos[video]]}/{video}\n" for video in tests[split])
        )
    return root
