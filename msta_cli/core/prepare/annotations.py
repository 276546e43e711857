"""Records shared by the layout readers, the protocols and the writer, plus file-finding helpers."""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from msta_cli.core.errors import InputError
from msta_cli.core.video_files import is_macos_artefact


class Row(NamedTuple):
    """One line of a split list: a video path and its integer label."""

    path: str
    label: int


class Problem(NamedTuple):
    """A video that is missing or unreadable, with the reason a user can act on."""

    path: str
    reason: str


@dataclass(frozen=True)
class Annotations:
    """What a dataset's official annotation files say, before any video is looked for.

    Row paths name videos the way the annotation does (e.g. `brush_hair/x.avi`, `abc_000001_000011.mp4`);
    they become paths relative to the video root once the videos are found. `problems` are videos
    the layout itself leaves out (a folder dataset's videos outside any class folder).
    """

    labels: list[str]
    splits: dict[str, list[Row]]
    train_split: str
    test_split: str
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class FileWalk:
    """The files below a root, and what could not be walked: a class folder behind a broken link is
    invisible otherwise, so the caller reports `unreachable` (path -> why) instead of dropping it."""

    files: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One note listing the unreachable entries, if any: a note, not problems.csv, which lists videos."""
        if not self.unreachable:
            return []
        entries = [f"{path} ({reason})" for path, reason in self.unreachable.items()]
        note = (
            f"{len(entries)} entries below SOURCE could not be read and were skipped, with any videos in them: "
            f"{name_some(entries)}; mount, fix or remove them"
        )
        return [note]


def walk_files(root: Path) -> FileWalk:
    """Every file below `root` as a POSIX path relative to it, sorted by folder then name.

    Follows symlinked folders (once each); skips hidden folders (msta's extraction staging) and macOS
    artefacts. Broken links and folders that cannot be listed are collected, not skipped silently.
    Strings, not Path objects: a Kinetics copy has hundreds of thousands of files.
    """
    walk = FileWalk()
    seen: set[str] = set()

    def visit(folder: str, prefix: str) -> None:
        real = os.path.realpath(folder)
        if real in seen:
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            walk.unreachable[prefix or "."] = f"cannot list: {error.strerror}"
            return
        folders = []
        for entry in entries:
            if is_macos_artefact(entry.name):
                continue
            try:
                if entry.is_dir():  # is_dir and is_file follow links; only a link costs a stat
                    if not entry.name.startswith("."):
                        folders.append(entry)
                elif entry.is_file():
                    walk.files.append(prefix + entry.name)
                elif entry.is_symlink():
                    walk.unreachable[prefix + entry.name] = f"broken link to {os.readlink(entry.path)}"
            except OSError as error:  # a link into a folder this user may not enter
                walk.unreachable[prefix + entry.name] = f"cannot open: {error.strerror}"
        for entry in folders:
            visit(entry.path, f"{prefix}{entry.name}/")

    visit(str(root), "")
    return walk


def name_some(names: list[str], limit: int = 5) -> str:
    """The first `limit` names, comma-separated, and how many more there are: notes stay one line."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def find_annotation(
    source: Path, pattern: str, dataset: str, expected: str, accept: Callable[[Path], bool] = lambda path: True
) -> Path:
    """The first file below SOURCE whose name matches a glob `pattern` (and that `accept`s), in walk order.

    Raises LayoutNotFound, saying what was expected, when there is none.
    """
    for path in walk_files(source).files:
        if fnmatch.fnmatchcase(posixpath.basename(path), pattern) and accept(source / path):
            return source / path
    raise layout_error(dataset, source, expected)


def read_fields(path: Path, count: int) -> list[tuple[str, list[str]]]:
    """Whitespace-separated lines with `count` fields (split from the right), each with its `file:line`.

    No official list is empty: an empty one is a damaged copy, which would otherwise drop its
    class or split from the prepared lists without a word.
    """
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().rsplit(maxsplit=count - 1)
        if len(fields) != count:
            raise InputError(f"{path}:{number}: expected {count} whitespace-separated fields, found {line.strip()!r}")
        rows.append((f"{path}:{number}", fields))
    if not rows:
        raise InputError(f"{path}: empty; an official annotation list is never empty, so this copy is damaged: restore it")
    return rows


def parse_int(text: str, where: str) -> int:
    """An integer field, or an error naming the file and line it came from."""
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{where}: expected an integer, found {text!r}") from None


def parse_label(text: str, where: str, num_labels: int, first: int = 0) -> int:
    """A label id counted from `first` (UCF's lists are 1-based), returned 0-based and range-checked."""
    label = parse_int(text, where) - first
    if not 0 <= label < num_labels:
        raise InputError(f"{where}: label {text} is outside {first}..{num_labels - 1 + first}")
    return label


class LayoutNotFound(InputError):
    """SOURCE holds no copy of the dataset's annotation files (maybe only its archives)."""


def layout_error(dataset: str, source: Path, expected: str) -> LayoutNotFound:
    """The error for a SOURCE that does not look like the dataset's layout: what was expected, what was found."""
    if source.is_dir():
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in source.iterdir())
        found = ", ".join(entries[:12]) + (f", ... ({len(entries)} entries)" if len(entries) > 12 else "")
        found = found or "an empty folder"
    else:
        found = "no such folder" if not source.exists() else "a file, not a folder"
    return LayoutNotFound(f"{source} does not look like {dataset}: expected {expected}; found {found}")


@dataclass
class Lists:
    """Split lists (`path,label` rows) and label lists (names in id order), keyed by the file they become."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def update(self, other: Lists) -> None:
        self.rows.update(other.rows)
        self.labels.update(other.labels)
        self.notes.extend(other.notes)
