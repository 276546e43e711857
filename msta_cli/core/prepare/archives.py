"""Extract the official archives (zip via zipfile; rar via bsdtar, 7-Zip or RARLAB unrar) without trusting them.

Every member is listed first and the whole archive is refused, before anything is written,
if one member would land outside the target: an absolute path, a `..` component, or a link
pointing out. Extraction then goes to a hidden staging folder next to the archive; links are
checked again there (7-Zip's listing does not show link targets) and only then are the
extracted entries moved into place, so an interrupted or refused extraction leaves nothing
half-extracted in SOURCE. A marker next to the archive records a finished extraction.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from msta_cli.core.errors import InputError, MstaError

RAR_TOOLS = (("bsdtar", "bsdtar"), ("7z", "7z"), ("7z", "7zz"), ("7z", "7za"), ("unrar", "unrar"))
INSTALL_HINT = (
    "install bsdtar (Debian/Ubuntu: libarchive-tools; macOS: built in), 7-Zip with RAR support, or RARLAB unrar"
)
# 7-Zip refuses, with an error, to extract a link pointing out of the target.
SEVEN_ZIP_UNSAFE_LINK = "Dangerous link path"
SEVEN_ZIP_RAR_FORMAT = re.compile(r"^\s+\S+\s+Rar5?\s", re.MULTILINE)
# bsdtar -tv prints ls-style lines: mode, links, owner, group, size, month, day, year or time, name.
BSDTAR_LINE = re.compile(
    r"^(?P<mode>\S{10})\s+\d+\s+\S+\s+\S+\s+\d+\s+\w{3}\s+\d{1,2}\s+(?:\d{4}|\d{1,2}:\d{2})\s(?P<rest>.*)$"
)


@dataclass(frozen=True)
class Member:
    """An archive entry: its path and, for symbolic or hard links, what it points to ('' when unknown)."""

    name: str
    link: str | None = None


def rar_tool() -> tuple[str, str] | None:
    """(kind, executable) of the first RAR-capable extractor on PATH.

    Skipped: unrar-free (another command line) and 7-Zip builds without the RAR codec, such as
    Debian's and Ubuntu's `7zip` and `p7zip-full` packages, which cannot open RAR files.
    """
    for kind, name in RAR_TOOLS:
        path = shutil.which(name)
        if path is None or (kind == "unrar" and "unrar-free" in os.path.realpath(path)):
            continue
        if kind == "7z" and not seven_zip_reads_rar(path):
            continue
        return kind, path
    return None


@functools.cache
def seven_zip_reads_rar(executable: str) -> bool:
    """Whether this 7-Zip lists a Rar format in `7z i` (format lines: flags, name, extensions)."""
    try:
        result = subprocess.run(
            [executable, "i"], capture_output=True, text=True, errors="replace", timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return SEVEN_ZIP_RAR_FORMAT.search(result.stdout) is not None


def extract(archive: Path, dest: Path, nested: bool = False) -> bool:
    """Extract `archive` into `dest` unless done before; `nested` also expands the archives inside (HMDB51).

    Returns whether anything was extracted.
    """
    marker = archive.with_name(f".{archive.name}.extracted")
    if marker.exists():
        return False
    staging = archive.with_name(f".{archive.name}.extracting")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _extract_checked(archive, staging)
        if nested:
            for inner in sorted(p for p in staging.iterdir() if p.suffix.lower() in (".rar", ".zip")):
                _extract_checked(inner, staging)
                inner.unlink()
        dest.mkdir(parents=True, exist_ok=True)
        entries = sorted(staging.iterdir())
        taken = [str(dest / entry.name) for entry in entries if (dest / entry.name).exists()]
        if taken:
            raise MstaError(
                f"cannot extract {archive}: {', '.join(taken[:3])} already exist; move them away or extract by hand"
            )
        for entry in entries:
            os.replace(entry, dest / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    marker.touch()
    return True


def list_members(archive: Path) -> list[Member]:
    """The archive's entries, from zipfile or the RAR tool's listing."""
    if archive.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(archive) as handle:
                return [
                    Member(info.filename, handle.read(info).decode("utf-8", "replace") if _zip_is_link(info) else None)
                    for info in handle.infolist()
                ]
        except zipfile.BadZipFile as error:
            raise MstaError(f"{archive} is not a readable zip ({error}); delete it and download it again") from None
    kind, tool = _require_rar_tool(archive)
    if kind == "bsdtar":
        return _parse_bsdtar(archive, _run([tool, "-tvf", str(archive)], archive))
    if kind == "7z":
        return _parse_7z(_run([tool, "l", "-slt", "-ba", str(archive)], archive))
    return _parse_unrar(_run([tool, "lta", "-c-", str(archive)], archive))


def unsafe_members(members: list[Member]) -> list[str]:
    """`name: why` for every member that would be written, or would point, outside the target folder."""
    problems = []
    for member in members:
        name = member.name.replace("\\", "/")
        if _absolute(name):
            problems.append(f"{member.name}: absolute path")
        elif ".." in name.split("/"):
            problems.append(f"{member.name}: '..' in path")
        elif member.link:
            target = member.link.replace("\\", "/")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if _absolute(target) or resolved == ".." or resolved.startswith("../"):
                problems.append(f"{member.name}: link to {member.link} outside the folder")
    return problems


def _extract_checked(archive: Path, target: Path) -> None:
    """List, refuse unsafe members, extract into `target`, then check the links that landed there."""
    problems = unsafe_members(list_members(archive))
    if problems:
        raise InputError(
            f"refusing to extract {archive}: {len(problems)} members escape the target folder: "
            + "; ".join(problems[:5])
        )
    target.mkdir(parents=True, exist_ok=True)
    if archive.suffix.lower() == ".zip":
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(target)
    else:
        kind, tool = _require_rar_tool(archive)
        commands = {
            "bsdtar": [tool, "-xf", str(archive), "-C", str(target)],
            "7z": [tool, "x", "-y", "-bd", f"-o{target}", str(archive)],
            "unrar": [tool, "x", "-o+", "-idq", "-c-", str(archive), f"{target}{os.sep}"],
        }
        _run(commands[kind], archive)
    root = target.resolve()
    for path in target.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise InputError(
                f"refusing {archive}: {path.relative_to(target)} links to {os.readlink(path)}, outside the folder"
            )


def _require_rar_tool(archive: Path) -> tuple[str, str]:
    tool = rar_tool()
    if tool is None:
        raise MstaError(f"cannot extract {archive}: no RAR extractor found; {INSTALL_HINT}, or extract it by hand")
    return tool


def _run(command: list[str], archive: Path) -> str:
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-3:]
        refusals = [line for line in output if SEVEN_ZIP_UNSAFE_LINK in line]
        if refusals:
            raise InputError(f"refusing {archive}: {refusals[0].strip()}, outside the folder")
        raise MstaError(
            f"{Path(command[0]).name} failed on {archive}: {' / '.join(output)} "
            f"({INSTALL_HINT} if this one cannot read it)"
        )
    return result.stdout


def _absolute(name: str) -> bool:
    return name.startswith("/") or re.match(r"^[A-Za-z]:", name) is not None


def _zip_is_link(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def _parse_bsdtar(archive: Path, listing: str) -> list[Member]:
    members = []
    for line in listing.splitlines():
        match = BSDTAR_LINE.match(line)
        if match is None:
            raise MstaError(
                f"cannot read bsdtar's listing of {archive}: {line!r}; refusing to extract what cannot be checked"
            )
        rest = match["rest"]
        separator = " -> " if match["mode"].startswith("l") else " link to " if " link to " in rest else None
        name, link = rest.split(separator, 1) if separator else (rest, None)
        members.append(Member(name, link))
    return members


def _parse_7z(listing: str) -> list[Member]:
    """7z -slt blocks of `Key = value` lines; links show in the attributes, their targets do not ('')."""
    members = []
    for block in listing.strip().split("\n\n"):
        fields = dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
        if "Path" in fields:
            is_link = " l" in f" {fields.get('Attributes', '')}"
            members.append(Member(fields["Path"], fields.get("Symbolic Link", "") if is_link else None))
    return members


def _parse_unrar(listing: str) -> list[Member]:
    """RARLAB `unrar lta` blocks with `Name:`, `Type:` and, for links, `Target:` lines."""
    members, current = [], {}
    for line in listing.splitlines() + [""]:
        key, _, value = line.strip().partition(": ")
        if key in ("Name", "Type", "Target"):
            current[key] = value
        elif not line.strip() and "Name" in current:
            is_link = "link" in current.get("Type", "").lower()
            members.append(Member(current["Name"], current.get("Target", "") if is_link else None))
            current = {}
    return members
