"""Write the synthetic action world as a prepared dataset, in exactly the `msta prepare` layout.

Labels list the novel classes first and the base classes after them: every class has the same
number of training videos, so DATASETS.md's rule (sort by training count, ties by id, first
half novel) run by the shared protocol code yields precisely the world's base/novel split.
Videos are checked with the same check a real dataset gets.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from msta_cli import __version__
from msta_cli.core.errors import InputError
from msta_cli.core.files import atomic_path
from msta_cli.core.prepare.annotations import Lists, Problem, Row
from msta_cli.core.prepare.check import check_videos
from msta_cli.core.prepare.progress import Progress, no_progress
from msta_cli.core.prepare.protocols import base2novel, fewshot
from msta_cli.core.prepare.writer import MANIFEST, labels_csv, manifest_yaml, problems_csv, rows_csv, write_outputs
from msta_cli.core.synthetic.world import (
    DIRECTION_PAIRS, FRAMES, ActionClass, base_classes, classes, descriptions, novel_classes, render_clip,
)

VIDEO_FOLDER = "videos"
DESCRIPTIONS = "descriptions.json"
SPLITS = ("train", "test")
FPS = 8
# Raised whenever the same options render different videos, so that training on a world
# prepared before is refused instead of quietly giving other numbers. 2: direction pairs share
# their videos, and encoding is byte-reproducible (CHANGELOG). Worlds before 2 record none.
WORLD_VERSION = 2


@dataclass(frozen=True)
class SyntheticOptions:
    """Size and seed of a generated world; the same options give the same frames."""

    train_per_class: int = 16
    test_per_class: int = 8
    frames: int = FRAMES
    seed: int = 0
    workers: int = 2


def check_world_version(manifest: dict, folder: Path) -> None:
    """Refuse a synthetic world rendered by another msta: its videos differ from today's."""
    version = manifest.get("world_version")
    if version == WORLD_VERSION:
        return
    recorded = manifest.get("synthetic") or {}
    defaults = SyntheticOptions()
    options = "".join(
        f" --{name.replace('_', '-')} {recorded[name]}"
        for name in ("train_per_class", "test_per_class", "seed")
        if recorded.get(name, getattr(defaults, name)) != getattr(defaults, name)
    )
    raise InputError(
        f"{folder}: this synthetic world was rendered by another msta (world version "
        f"{version or 'before 2'}, this msta renders {WORLD_VERSION}), so its videos differ "
        f"from the ones results are quoted for; run `msta prepare synthetic {folder}{options}` again"
    )


def ordered_classes() -> list[ActionClass]:
    """Label order: novel classes, then base classes (see the module docstring)."""
    return novel_classes() + base_classes()


def video_seed(options: SyntheticOptions, action: ActionClass, split: str, index: int) -> list[int]:
    """Both members of a direction pair take the first member's seeds: video i of "square moving
    right" is video i of "square moving left" played backwards, so within a split only the order
    of the frames tells the two classes apart (with a seed per class, each class also had its own
    colours and places, which a model could memorise instead of learning order)."""
    drawn = ActionClass(action.shape, DIRECTION_PAIRS[action.group][0]) if action.partner() else action
    return [options.seed, classes().index(drawn), SPLITS.index(split), index]


def encode_mp4(path: Path, frames: np.ndarray, fps: int = FPS, crf: int = 10) -> None:
    """Write uint8 (T, H, W, 3) frames as an H.264 mp4 (near-lossless at crf 10), atomically.

    Without x264's macroblock-tree rate control: with it, the same 8 frames came out as 2-5
    different files in 40 encodes of some clips (decoded pixels up to 11 levels apart; with
    one encoder thread too), so the same options gave a slightly different world, and different
    training results, from run to run. Without it, or without B-frames, or without lookahead,
    every encode matched (clips far shorter than x264's 40-frame lookahead; an uninitialised
    read there is the likely cause, not confirmed).
    """
    with atomic_path(path) as temporary, av.open(temporary, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "x264-params": "mbtree=0"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


def write_synthetic(out: Path, options: SyntheticOptions, progress: Progress = no_progress) -> dict:
    """Render, encode and check every video, then write labels, splits, protocol lists and descriptions; returns the manifest."""
    if options.train_per_class < 1 or options.test_per_class < 1 or options.frames < 2:
        raise InputError("synthetic worlds need at least 1 train and 1 test video per class and 2 frames per video")
    actions = ordered_classes()
    labels = [action.name for action in actions]
    video_root = out / VIDEO_FOLDER
    rows: dict[str, list[Row]] = {split: [] for split in SPLITS}
    total = len(actions) * (options.train_per_class + options.test_per_class)
    progress("render videos", 0, total)
    for label, action in enumerate(actions):
        folder = action.name.replace(" ", "_")
        (video_root / folder).mkdir(parents=True, exist_ok=True)
        for split, count in (("train", options.train_per_class), ("test", options.test_per_class)):
            for index in range(count):
                path = f"{folder}/{split}_{index:03d}.mp4"
                encode_mp4(video_root / path, render_clip(action, video_seed(options, action, split, index), options.frames))
                rows[split].append(Row(path, label))
        progress("render videos", (label + 1) * (options.train_per_class + options.test_per_class), total)
    failures = check_videos(video_root, [row.path for split in SPLITS for row in rows[split]], options.workers, progress)
    usable = {split: [row for row in rows[split] if row.path not in failures] for split in SPLITS}
    lists = Lists(rows={f"{split}.csv": usable[split] for split in SPLITS}, labels={"labels.csv": labels})
    lists.update(base2novel(labels, rows["train"], usable["train"], usable["test"], options.seed))
    lists.update(fewshot(labels, usable["train"], options.seed))
    problems = [Problem(path, reason) for path, reason in failures.items()]
    files = {name: labels_csv(names) for name, names in lists.labels.items()}
    files |= {name: rows_csv(list_rows) for name, list_rows in lists.rows.items()}
    files["problems.csv"] = problems_csv(problems)
    files[DESCRIPTIONS] = json.dumps({action.name: descriptions(action) for action in actions}, indent=1).encode()
    manifest = {
        "name": "synthetic",
        "msta_version": __version__,
        "video_root": str(video_root.absolute()),
        "num_classes": len(labels),
        "labels": "labels.csv",
        "splits": {split: {"file": f"{split}.csv", "videos": len(usable[split]),
                           "excluded": len(rows[split]) - len(usable[split])} for split in SPLITS},
        "lists": {name: len(list_rows) for name, list_rows in sorted(lists.rows.items()) if name not in ("train.csv", "test.csv")},
        "check": {"checked": total, "ok": total - len(failures), "problems": len(problems), "missing": 0,
                  "unreadable": len(failures)},
        "problems": "problems.csv",
        "seed": options.seed,
        "world_version": WORLD_VERSION,
        "synthetic": asdict(options),
        "descriptions": DESCRIPTIONS,
        "notes": lists.notes,
    }
    manifest["files"] = sorted([*files, MANIFEST])
    files[MANIFEST] = manifest_yaml(manifest)
    write_outputs(out, files)
    return manifest
