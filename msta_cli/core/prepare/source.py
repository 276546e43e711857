"""SOURCE as users have it: extracted, still in the official archives, or to be downloaded.

Only the archives whose content SOURCE lacks are fetched, hashed and extracted, so a copy
extracted in part by hand, or a rerun, costs no re-hash of a 6.5 GB archive.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import Annotations, LayoutNotFound, name_some, walk_files
from msta_cli.core.prepare.archives import extract, extracted
from msta_cli.core.prepare.datasets import DatasetSpec
from msta_cli.core.prepare.download import OfficialArchive, download, verify_existing
from msta_cli.core.prepare.options import PrepareOptions
from msta_cli.core.prepare.progress import Progress
from msta_cli.core.video_files import is_video_file

# How Kinetics (one tar.gz per part) and SSv2 (20bn-something-something-v2-00 ... -19) publish their videos.
TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar")
SSV2_PART = re.compile(r"20bn-something-something-v2-\d\d")
SSV2_PARTS = 20


def read_source(spec: DatasetSpec, options: PrepareOptions, progress: Progress) -> Annotations:
    """The annotations in SOURCE, extracting an official archive only when its content is missing (fetched
    first with --download if it is not there either).

    The lists archive is extracted when SOURCE has no readable lists; the videos archive when SOURCE holds
    no video file, or when the entries an earlier extraction put there are gone (an interrupted run, or
    deleted since). So a copy extracted in part by hand, or a rerun, is neither hashed nor extracted again.
    """
    source = options.source
    if options.download and not spec.archives:
        raise InputError(
            f"--download is available for hmdb51 and ucf101 only; get {options.dataset} with its own tools"
        )
    if options.urls and not options.download:
        raise InputError("--url says where --download fetches an archive from; add --download")
    try:
        annotations, not_found = spec.read(source, options), None
    except LayoutNotFound as error:
        annotations, not_found = None, error
    present = _archives_in(spec, source)
    if not present and not options.download:
        if not_found is not None:
            raise not_found
        return annotations
    needed = [archive for archive in spec.archives if _content_missing(archive, source, not_found is not None)]
    absent = [archive for archive in needed if archive not in present]
    if absent and not options.download:
        if not_found is not None:
            raise InputError(
                f"{source} has {', '.join(a.filename for a in present)} but not "
                f"{', '.join(a.filename for a in absent)}: put it next to it or pass --download"
            )
        needed = [archive for archive in needed if archive in present]  # the videos: locate_videos says where
    notes = _unused_archive_notes(spec, options, needed)
    if options.download:
        for archive in needed:
            url = options.urls.get(archive.filename, archive.url)
            download(url, source / archive.filename, options.sha256.get(archive.filename, archive.sha256), progress)
    else:  # every archive is checked before any is extracted: UCF101.rar takes minutes
        for archive in needed:
            pin = options.sha256.get(archive.filename, archive.sha256)
            if pin is not None:
                verify_existing(source / archive.filename, pin, progress)
    for archive in needed:
        progress(f"extract {archive.filename}", 0, None)
        extract(source / archive.filename, source / archive.into, archive.nested)
        progress(f"extract {archive.filename}", 1, 1)
    if not_found is not None:
        annotations = spec.read(source, options)
    annotations.notes.extend(notes)
    return annotations


def _content_missing(archive: OfficialArchive, source: Path, lists_missing: bool) -> bool:
    """Whether this archive must be extracted: its entries from an earlier extraction are gone, or, without a
    record of one, SOURCE lacks what it holds (readable lists; any video file, for the videos archive)."""
    state = extracted(source / archive.filename, source / archive.into)
    if state is not None:
        return not state
    return not _holds_videos(source) if archive.videos else lists_missing


def _unused_archive_notes(spec: DatasetSpec, options: PrepareOptions, needed: list[OfficialArchive]) -> list[str]:
    """Say which archives were left alone because SOURCE holds their content: a copy extracted by hand
    may lack some of what the archive has, and --download users expect a download."""
    source = options.source
    if options.download and not needed:
        return [f"--download: {source} holds the extracted dataset already; nothing downloaded"]
    notes = []
    for archive in spec.archives:
        what = "videos" if archive.videos else "the annotation files"
        if archive in needed:
            continue
        if not (source / archive.filename).is_file():
            if options.download:
                notes.append(f"--download: {archive.filename} not fetched: {source} holds {what} already")
        elif extracted(source / archive.filename, source / archive.into) is None:
            notes.append(
                f"{archive.filename} not extracted: {source} holds {what} already (extracted by hand?), used as they are"
            )
    return notes


def _holds_videos(source: Path) -> bool:
    return any(is_video_file(path) for path in walk_files(source).files)


def _archives_in(spec: DatasetSpec, source: Path) -> list[OfficialArchive]:
    return [archive for archive in spec.archives if (source / archive.filename).is_file()]


def where_videos_are(archives: tuple[OfficialArchive, ...], source: Path) -> str:
    """The hint for a SOURCE without any listed video: the archive the videos come in, if there is one."""
    videos = next((archive for archive in archives if archive.videos), None)
    if videos is None:
        return _packed_videos(source) or "is SOURCE the right folder?"
    inside = " and the RARs inside it (one per class)" if videos.nested else ""
    return (
        f"if they are still in {videos.filename}, put it into {source} (msta extracts it into a SOURCE without "
        f"videos; --download fetches it) or extract it{inside} into {source / videos.into} by hand"
    )


def _packed_videos(source: Path) -> str | None:
    """How to unpack the archives the videos of Kinetics or SSv2 come in, if SOURCE holds them: msta leaves
    those to the user (hundreds of GB, in parts that only a shell pipe reassembles)."""
    files = walk_files(source).files
    parts = [path for path in files if SSV2_PART.fullmatch(posixpath.basename(path))]
    if parts:
        folder = source / posixpath.dirname(parts[0])
        first = "" if len(parts) >= SSV2_PARTS else "get the missing parts, then "
        return (
            f"{source} holds {len(parts)} of the {SSV2_PARTS} parts of SSv2's video archive ({name_some(parts, 2)}), "
            f"not videos: {first}extract them with `cd {folder} && cat 20bn-something-something-v2-?? | tar -xz` "
            "(the videos land in 20bn-something-something-v2/), then rerun"
        )
    tarballs = [path for path in files if path.lower().endswith(TARBALL_SUFFIXES)]
    if tarballs:
        folders = sorted({posixpath.dirname(path) for path in tarballs})
        suffix = next(suffix for suffix in TARBALL_SUFFIXES if tarballs[0].lower().endswith(suffix))
        return (
            f"{source} holds {_count(tarballs, 'tar archive')} ({name_some(tarballs, 2)}), not videos: extract each in "
            f"its folder ({name_some([str(source / folder) for folder in folders], 3)}), e.g. "
            f"`cd {source / folders[0]} && for f in *{suffix}; do tar -xf \"$f\"; done`, then rerun"
        )
    return None


def _count(items: list[str], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
