"""Which file names are videos: one list for `msta prepare` (finding a dataset's videos) and `msta predict`
(expanding folders), so a container one command takes is never skipped by the other.

A leaf module with no imports from msta, so that both can import it without a cycle and without
loading the other's dependencies.
"""

from __future__ import annotations

import posixpath

# .ts/.mts/.m2ts: MPEG transport streams, as cameras and camcorders (AVCHD) write them.
VIDEO_SUFFIXES = frozenset(
    {
        ".3gp",
        ".avi",
        ".flv",
        ".m2ts",
        ".m4v",
        ".mkv",
        ".mov",
        ".mp4",
        ".mpeg",
        ".mpg",
        ".mts",
        ".ogv",
        ".ts",
        ".webm",
        ".wmv",
    }
)


def is_video_file(name: str) -> bool:
    """Whether a file name (or POSIX path) has a video container's extension, in any letter case."""
    return posixpath.splitext(name)[1].lower() in VIDEO_SUFFIXES
