"""`msta prepare`: from a dataset as published to checked split lists a training run can trust.

Read the official annotations (extracting or downloading the archives when asked or needed),
optionally take ViFi-CLIP's lists instead of sampling, find every listed video below SOURCE,
check them, leave out (and list) the missing and unreadable ones, draw the protocol lists
from what is left, and write everything atomically.
"""

from __future__ import annotations

import dataclasses
import posixpath
from dataclasses import dataclass
from pathlib import Path

from msta_cli import __version__
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.prepare.annotations import Annotations, Lists, Problem, Row
from msta_cli.core.prepare.check import check_videos
from msta_cli.core.prepare.datasets import DATASETS, DatasetSpec
from msta_cli.core.prepare.download import OfficialArchive
from msta_cli.core.prepare.index import VideoIndex
from msta_cli.core.prepare.kinetics import new_k600_classes, read_label_names
from msta_cli.core.prepare.options import PrepareOptions
from msta_cli.core.prepare.progress import Progress, no_progress
from msta_cli.core.prepare.protocols import ZEROSHOT_CLASSES, base2novel, fewshot, zeroshot
from msta_cli.core.prepare.source import read_source, where_videos_are
from msta_cli.core.prepare.vifi import read_vifi, require_vifi_lists
from msta_cli.core.prepare.writer import (
    MANIFEST,
    labels_csv,
    manifest_yaml,
    problems_csv,
    require_output_folder,
    rows_csv,
    write_outputs,
)

ZEROSHOT_HELP = (
    "zero-shot lists not written: they need the Kinetics-400 class names to find K600's new classes; pass "
    "--k400-labels data/kinetics400/labels.csv (from `msta prepare kinetics400`) or ViFi-CLIP's "
    "labels/kinetics_400_labels.csv, or --vifi-clip-splits to import ViFi-CLIP's zero-shot lists"
)


@dataclass(frozen=True)
class ListSize:
    """Videos a list names and how many of them it keeps (the others are in problems.csv)."""

    listed: int
    written: int


@dataclass(frozen=True)
class PrepareReport:
    """What a run wrote, for the command's summary."""

    out: Path
    video_root: Path
    num_classes: int
    splits: list[str]
    lists: dict[str, ListSize]
    checked: int
    problems: list[Problem]
    notes: list[str]
    imported: list[str]
    removed: list[str]


@dataclass(frozen=True)
class Located:
    """Where the listed videos are, and which of them cannot be used and why."""

    video_root: Path
    paths: dict[str, str]  # name as listed -> path relative to the video root
    failures: dict[str, str]  # path relative to the video root -> why it failed the check
    missing: list[Problem]
    checked: int

    def usable(self, rows: list[Row]) -> list[Row]:
        """The rows whose video was found and passed the check, with paths relative to the video root."""
        kept = (Row(self.paths[row.path], row.label) for row in rows if row.path in self.paths)
        return [row for row in kept if row.path not in self.failures]

    @property
    def problems(self) -> list[Problem]:
        return sorted(self.missing + [Problem(path, reason) for path, reason in self.failures.items()])


def prepare(options: PrepareOptions, progress: Progress = no_progress) -> PrepareReport:
    """Run every step; raises InputError for a SOURCE or option that cannot work, with what was expected."""
    if options.dataset not in DATASETS:
        raise InputError(f"unknown dataset {options.dataset!r}; choose one of {', '.join(DATASETS)}")
    spec = DATASETS[options.dataset]
    if options.vifi_dir is not None:
        require_vifi_lists(options.dataset)
    require_output_folder(options.out)
    k400_labels = read_label_names(options.k400_labels) if options.k400_labels is not None else None
    annotations = read_source(spec, options, progress)
    lists = Lists(
        rows={f"{split}.csv": rows for split, rows in annotations.splits.items()},
        labels={"labels.csv": annotations.labels},
        notes=list(annotations.notes),
    )
    if spec.num_classes is not None and len(annotations.labels) != spec.num_classes:
        lists.notes.append(f"the annotations name {len(annotations.labels)} classes, not {spec.num_classes}")
    imported: list[str] = []
    if options.vifi_dir is not None:
        vifi_lists, imported = read_vifi(options.vifi_dir, options.dataset, annotations.labels, spec.protocols)
        lists.update(vifi_lists)
    new_classes = _new_classes(spec, options, annotations.labels, k400_labels, imported)

    located, match_notes = locate_videos(options, spec.archives, lists.rows, progress)
    listed = {name: len(rows) for name, rows in lists.rows.items()}
    lists.rows = {name: located.usable(rows) for name, rows in lists.rows.items()}
    splits = [f"{split}.csv" for split in annotations.splits]
    if spec.split is not None:  # no official splits: draw them from the videos that passed the check
        (videos,) = lists.rows.values()
        drawn = spec.split(videos, annotations.labels, options)
        lists.rows = drawn.rows
        lists.notes += drawn.notes
        splits = list(lists.rows)
    _require_videos(splits, lists.rows, located.problems)
    lists.update(_protocols(spec, options, annotations, lists, imported, new_classes))
    sizes = {name: ListSize(listed.get(name, len(rows)), len(rows)) for name, rows in lists.rows.items()}
    report = PrepareReport(
        out=options.out,
        video_root=located.video_root,
        num_classes=len(annotations.labels),
        splits=splits,
        lists=sizes,
        checked=located.checked,
        problems=sorted(located.problems + annotations.problems),
        notes=match_notes + lists.notes,
        imported=imported,
        removed=[],
    )
    files = {name: labels_csv(names) for name, names in lists.labels.items()}
    files |= {name: rows_csv(rows) for name, rows in lists.rows.items()}
    files["problems.csv"] = problems_csv(report.problems)
    manifest = _manifest(options, report, located, len(annotations.problems), sorted([*files, MANIFEST]))
    files[MANIFEST] = manifest_yaml(manifest)
    return dataclasses.replace(report, removed=write_outputs(options.out, files))


def locate_videos(
    options: PrepareOptions, archives: tuple[OfficialArchive, ...], rows: dict[str, list[Row]], progress: Progress
) -> tuple[Located, list[str]]:
    """Find every listed video below SOURCE and check the ones found; also notes on inexact matches."""
    progress("index videos", 0, None)
    index = VideoIndex(options.source)
    progress("index videos", len(index), len(index))
    found, missing = _find(index, rows)
    if not found:
        example = next((row.path for list_rows in rows.values() for row in list_rows), "the lists name none")
        raise InputError(
            f"none of the listed videos is below {options.source} (e.g. {example}); "
            + "; ".join([*index.unreachable_notes, where_videos_are(archives, options.source)])
        )
    root = posixpath.commonpath([posixpath.dirname(path) for path in found.values()])
    paths = {listed: path[len(root) + 1 :] if root else path for listed, path in found.items()}
    video_root = options.source.absolute() / root
    videos = sorted(set(paths.values()))
    failures = check_videos(video_root, videos, options.workers, progress) if options.check else {}
    checked = len(videos) if options.check else 0
    return Located(video_root, paths, failures, missing, checked), index.unreachable_notes + index.matches.notes(root)


def _require_videos(splits: list[str], rows: dict[str, list[Row]], problems: list[Problem]) -> None:
    """Stop before writing anything when a split list would be empty: no training run could use it."""
    empty = [name for name in splits if not rows[name]]
    if empty:
        example = f", e.g. {problems[0].path}: {problems[0].reason}" if problems else ""
        raise MstaError(
            f"{' and '.join(empty)} would be empty ({len(problems)} videos missing or unreadable{example}); "
            "nothing was written"
        )


def _find(index: VideoIndex, rows: dict[str, list[Row]]) -> tuple[dict[str, str], list[Problem]]:
    """Each distinct listed name's path below SOURCE, and one problem per missing video, naming its lists.

    Lists may name one video differently (`brush_hair/x.avi`, ViFi-CLIP's `x.avi`); a missing
    video is reported once, by its longest name.
    """
    lists_of: dict[str, list[str]] = {}
    for name, list_rows in rows.items():
        for row in list_rows:
            lists_of.setdefault(row.path, []).append(name)
    located: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    for listed in sorted(lists_of, key=lambda name: (-len(name), name)):
        found = index.find(listed)
        if found is not None:
            located[listed] = found
            continue
        names = missing.setdefault(posixpath.basename(listed).lower(), [listed])
        names += lists_of[listed]
    problems = [
        Problem(names[0], f"missing: not found below SOURCE (listed in {', '.join(dict.fromkeys(names[1:]))})")
        for names in missing.values()
    ]
    return located, problems


def _new_classes(
    spec: DatasetSpec, options: PrepareOptions, labels: list[str], k400_labels: list[str] | None, imported: list[str]
) -> list[str] | None:
    """K600's classes that are not K400's, for the zero-shot lists: known from the annotations, so a K400 list
    that leaves too few is refused before any video is indexed. None when no zero-shot list is drawn."""
    if "zeroshot" not in spec.protocols - set(imported) or k400_labels is None:
        return None
    new = new_k600_classes(labels, k400_labels)
    if len(new) < ZEROSHOT_CLASSES:
        raise InputError(
            f"--k400-labels {options.k400_labels}: only {len(new)} of the {len(labels)} classes of the annotations "
            f"are not in it; the zero-shot splits need {ZEROSHOT_CLASSES} (is it the Kinetics-400 label list?)"
        )
    return new


def _protocols(
    spec: DatasetSpec,
    options: PrepareOptions,
    annotations: Annotations,
    lists: Lists,
    imported: list[str],
    new_classes: list[str] | None,
) -> Lists:
    """The protocol lists DATASETS.md defines for this dataset, except those imported from ViFi-CLIP."""
    wanted = spec.protocols - set(imported)
    labels, generated = annotations.labels, Lists()
    if wanted & {"base2novel", "fewshot"}:
        train = lists.rows[f"{annotations.train_split}.csv"]
        test = lists.rows[f"{annotations.test_split}.csv"]
        if "base2novel" in wanted:
            generated.update(base2novel(labels, annotations.splits[annotations.train_split], train, test, options.seed))
        if "fewshot" in wanted:
            generated.update(fewshot(labels, train, options.seed))
    if "zeroshot" in wanted:
        if new_classes is None:
            generated.notes.append(ZEROSHOT_HELP)
        else:
            generated.update(zeroshot(labels, new_classes, lists.rows[f"{annotations.test_split}.csv"], options.seed))
    return generated


def _manifest(
    options: PrepareOptions, report: PrepareReport, located: Located, unclassified: int, files: list[str]
) -> dict:
    """dataset.yaml: what a training run needs (video root, files) and what this run found."""
    sizes = report.lists
    return {
        "name": options.dataset,
        "msta_version": __version__,
        "video_root": str(report.video_root),
        "num_classes": report.num_classes,
        "labels": "labels.csv",
        "splits": {
            name.removesuffix(".csv"): {
                "file": name,
                "videos": sizes[name].written,
                "excluded": sizes[name].listed - sizes[name].written,
            }
            for name in report.splits
        },
        "lists": {name: sizes[name].written for name in sorted(sizes) if name not in report.splits},
        "check": {
            "checked": report.checked,
            "ok": report.checked - len(located.failures) if options.check else None,
            "problems": len(report.problems),
            "missing": len(located.missing),
            "unreadable": len(located.failures),
            "unclassified": unclassified,
        },
        "problems": "problems.csv",
        "seed": options.seed,
        "vifi_clip": {"dir": str(options.vifi_dir.absolute()), "imported": report.imported}
        if options.vifi_dir
        else None,
        "notes": report.notes,
        "files": files,
    }
