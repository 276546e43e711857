"""Find the videos an annotation names, wherever below SOURCE a copy put them.

Copies of the public datasets differ in folder names, nesting, letter case (UCF101's
HandstandPushups/HandStandPushups) and container (Kinetics .mp4 vs .mkv), so videos are
matched by file name and every match that is not exact is counted and reported.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from msta_cli.core.prepare.annotations import walk_files
from msta_cli.core.video_files import is_video_file

MATCH_KINDS = {
    "case": "matched with different letter case",
    "folder": "found in another folder than the annotation names",
    "suffix": "found with another video extension",
    "ambiguous": "found more than once; took the first in sorted order",
}


@dataclass
class MatchReport:
    """Non-exact matches per kind: how many, and the first example (listed name, path found)."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, kind: str, listed: str, found: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.examples.setdefault(kind, (listed, found))

    def notes(self, video_root: str) -> list[str]:
        """One line per kind, the example's path relative to the video root (as in the split lists)."""
        notes = []
        for kind, description in MATCH_KINDS.items():
            if kind in self.counts:
                listed, found = self.examples[kind]
                example = f"{listed} -> {posixpath.relpath(found, video_root or '.')}"
                notes.append(f"{self.counts[kind]} videos {description}, e.g. {example}")
        return notes


class VideoIndex:
    """All video files below a root, looked up by file name (case-insensitive) or by stem.

    `unreachable_notes`: the broken links and unreadable folders below the root, whose videos cannot be found.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.by_name: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        walk = walk_files(root)
        self.unreachable_notes = walk.notes()
        for path in filter(is_video_file, walk.files):
            name = posixpath.basename(path).lower()
            self.by_name.setdefault(name, []).append(path)
            self.by_stem.setdefault(posixpath.splitext(name)[0], []).append(path)
        self.matches = MatchReport()

    def __len__(self) -> int:
        return sum(len(paths) for paths in self.by_name.values())

    def find(self, listed: str) -> str | None:
        """The path (relative to the root) of the video an annotation calls `listed`, or None.

        Prefers a path ending in `listed` exactly, then case-insensitively, then any folder;
        call it once per distinct name, since every non-exact match is counted.
        """
        name = posixpath.basename(listed).lower()
        candidates = self.by_name.get(name)
        by_suffix = candidates is None
        if by_suffix:
            candidates = self.by_stem.get(posixpath.splitext(name)[0])
            if candidates is None:
                return None
        exact = [c for c in candidates if _ends_with(c, listed)]
        folded = [c for c in candidates if _ends_with(c.lower(), listed.lower())]
        pool, kind = next((p, k) for p, k in ((exact, None), (folded, "case"), (candidates, "folder")) if p)
        if len(pool) > 1:
            kind = "ambiguous"
        elif by_suffix:
            kind = "suffix"
        if kind is not None:
            self.matches.add(kind, listed, pool[0])
        return pool[0]


def _ends_with(path: str, tail: str) -> bool:
    return path == tail or path.endswith("/" + tail)
