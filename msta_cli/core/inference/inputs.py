"""Turn `msta predict` arguments (files, folders, globs) into a list of videos.

An argument that names nothing becomes a failure with a reason, never a silent skip, so a
typo in a batch shows up in the failure count.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Sequence

from msta_cli.core.data.dataset import VideoFailure
from msta_cli.core.video_files import VIDEO_SUFFIXES, is_macos_artefact, is_video_file


def expand_inputs(specs: Sequence[str]) -> list[Path | VideoFailure]:
    """Videos, and failures for arguments that name none, in argument order (so a report lists
    them as given) without repeats (one path spelt several ways is predicted once, under its
    first spelling; two names linked to one file stay two videos): a file as given (whatever
    its suffix), a folder's video files recursively (sorted), a glob's matching video files and
    the video files in its matching folders (sorted), as a folder's."""
    expanded: list[Path | VideoFailure] = []
    seen: set[Path] = set()
    for spec in specs:
        found, reason = _expand(spec)
        if reason:
            expanded.append(VideoFailure(spec, reason))
        for path in found:
            key = Path(os.path.normpath(path.absolute()))
            if key not in seen:
                seen.add(key)
                expanded.append(path)
    return expanded


def _expand(spec: str) -> tuple[list[Path], str]:
    path = Path(spec)
    if path.is_file():
        return [path], ""
    if path.is_dir():
        found = _videos_in(path)
        return found, "" if found else f"folder holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))})"
    if glob.has_magic(spec):
        matches = [Path(match) for match in sorted(glob.glob(spec, recursive=True))]
        found = [
            path for match in matches if not any(is_macos_artefact(part) for part in match.parts)
            for path in (_videos_in(match) if match.is_dir() else [match] if is_video_file(match.name) else [])
        ]
        return found, "" if found else f"pattern matches no video files ({', '.join(sorted(VIDEO_SUFFIXES))})"
    return [], "file not found"


def _videos_in(folder: Path) -> list[Path]:
    """Video files below `folder`, leaving out macOS metadata (`__MACOSX/`, `._name`)."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and is_video_file(p.name)
        and not any(is_macos_artefact(part) for part in p.relative_to(folder).parts)
    )
