"""Which file names are videos: one list for `msta prepare` (finding a dataset's videos) and `msta predict`
(expanding folders), so a container one command takes is never skipped by the other.

A leaf module with no imports from msta, so that both can import it without a cycle and without
loading the other's dependencies.
"""

from __future__ import annotations

import posixpath

# Containers FFmpeg (so decord and PyAV) reads. .ts/.mts/.m2ts: MPEG transport streams, as cameras and
# camcorders (AVCHD) write them; .vob: DVD video; .mxf: broadcast cameras; .f4v/.qt/.3g2/.divx: MP4,
# QuickTime and AVI under other names; .rm/.rmvb: RealMedia.
VIDEO_SUFFIXES = frozenset(
    {
        ".3g2",
        ".3gp",
        ".asf",
        ".avi",
        ".divx",
        ".dv",
        ".f4v",
        ".flv",
        ".m2ts",
        ".m2v",
        ".m4v",
        ".mkv",
        ".mov",
        ".mp4",
        ".mpeg",
        ".mpg",
        ".mts",
        ".mxf",
        ".ogv",
        ".qt",
        ".rm",
        ".rmvb",
        ".ts",
        ".vob",
        ".webm",
        ".wmv",
    }
)


def is_macos_artefact(name: str) -> bool:
    """A `__MACOSX` folder (where macOS's ZIP tool stores resource forks) or an AppleDouble
    `._<name>` file (what a Mac leaves on exFAT, FAT and network drives): metadata, never data."""
    return name == "__MACOSX" or name.startswith("._")


def is_video_file(name: str) -> bool:
    """Whether a file name (or POSIX path) has a video container's extension, in any letter case."""
    return posixpath.splitext(name)[1].lower() in VIDEO_SUFFIXES
