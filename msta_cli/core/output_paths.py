"""Check where a command will write before it does the work: a mistake in --out or --output
should cost nothing, not an export or every video's scores."""

from __future__ import annotations

import tempfile
from pathlib import Path

from msta_cli.core.errors import InputError


def check_output(path: Path, option: str, folder: bool = False) -> None:
    """Refuse an output that cannot be written: a folder given for a file, a file under a file,
    or a place where files cannot be created (/proc, /sys, a read-only disk). Missing folders
    are fine: writing creates them.

    `folder` outputs (an adapter export, the timeline folder) are the folder itself; others are
    a file in `path.parent`. Permission bits are not read: root passes every such check while
    /sys still refuses it, so a file is created and removed in the nearest existing folder.
    """
    if not folder and path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give a file name")
    start = path if folder else path.parent
    existing = next(p for p in (start, *start.parents) if p.exists())
    if not existing.is_dir():
        where = "" if existing == path else f" {existing}"
        raise InputError(f"{option} {path}:{where} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".msta-check-"):
            pass
    except OSError as error:
        raise InputError(f"{option} {path}: cannot write in {existing}: {error.strerror or error}") from None


def os_error_message(error: OSError) -> str:
    """`PATH: reason` of a failed write, without the errno noise of str(error)."""
    return f"{error.filename}: {error.strerror}" if error.filename and error.strerror else str(error)
