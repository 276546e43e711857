"""Extract the official archives (zip via zipfile; rar via bsdtar, 7-Zip or RARLAB unrar) without trusting them.

Every member is listed first and the whole archive is refused, before anything is written, if
one member could land outside the target: an absolute path, a `..` component, a symbolic link
(dataset archives hold none, and a link, or a chain of links, lets later members be written
through it to anywhere), or a hard link that does not name a file of the archive. Extraction
then goes to a hidden staging folder next to the archive; links are checked again there (a
listing may not show them all) and only then are the extracted entries moved into place, so an
interrupted or refused extraction leaves nothing half-extracted in SOURCE. A marker next to the
archive names the entries msta moved into place: a rerun skips an archive whose entries are all
there, resumes an interrupted move and re-extracts what the user deleted since.
"""

from __future__ import annotations

import errno
import functools
import os
import posixpath
import re
import shutil
import subprocess
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.files import write_text_atomic

RAR_TOOLS = (("bsdtar", "bsdtar"), ("7z", "7z"), ("7z", "7zz"), ("7z", "7za"), ("unrar", "unrar"))
INSTALL_HINT = (
    "install bsdtar (Debian/Ubuntu: libarchive-tools; macOS: built in), 7-Zip with RAR support, or RARLAB unrar"
)
FILE, FOLDER, SYMLINK, HARDLINK = "file", "folder", "symbolic link", "hard link"
# 7-Zip refuses, with an error, to extract a link pointing out of the target.
SEVEN_ZIP_UNSAFE_LINK = "Dangerous link path"
SEVEN_ZIP_RAR_FORMAT = re.compile(r"^\s+\S+\s+Rar5?\s", re.MULTILINE)
# bsdtar -tv prints ls-style lines: mode, links, owner, group, size, month, day, year or time, name.
BSDTAR_LINE = re.compile(
    r"^(?P<mode>\S{10})\s+\d+\s+\S+\s+\S+\s+\d+\s+\w{3}\s+\d{1,2}\s+(?:\d{4}|\d{1,2}:\d{2})\s(?P<rest>.*)$"
)
# What the extractors print when they fail, in their own words, so the message says what to do about it.
NO_SPACE = re.compile(r"no space left|not enough space|disk is full|disk full", re.IGNORECASE)
DAMAGED = re.compile(
    r"truncated|damaged|corrupt|crc|checksum|unexpected end|premature end|data error|bad archive", re.IGNORECASE
)
UNREADABLE = re.compile(
    r"unrecogni[sz]ed archive|unsupported|not supported|can ?not open (the file )?as archive|can't open as archive"
    r"|is not rar archive|unknown method",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Member:
    """An archive entry: its path, its kind, and for a link what it points to ('' when the listing does not say)."""

    name: str
    kind: str = FILE
    target: str | None = None


def rar_tool() -> tuple[str, str] | None:
    """(kind, executable) of the first RAR-capable extractor on PATH.

    Skipped: unrar-free (another command line) and 7-Zip builds without the RAR codec, such as
    Debian's and Ubuntu's `7zip` and `p7zip-full` packages, which cannot open RAR files.
    """
    for kind, name in RAR_TOOLS:
        path = shutil.which(name)
        if path is None or (kind == "unrar" and _is_unrar_free(path)):
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


def extracted(archive: Path, dest: Path) -> bool | None:
    """Whether the entries an earlier extraction moved into `dest` are all still there; None without a record.

    False means some are gone: the move was interrupted, or the user deleted them since.
    """
    entries = _recorded_entries(archive)
    if not entries:
        return None
    return all(os.path.lexists(dest / name) for name in entries)


def extract(archive: Path, dest: Path, nested: bool = False) -> bool:
    """Extract `archive` into `dest` unless its entries are there from an earlier extraction; `nested` also
    expands the archives inside (HMDB51). Returns whether anything was extracted.

    The marker naming the entries is written before they are moved, so the entries an interrupted or
    earlier run put into `dest` are known to be the archive's own: they are kept, the others moved in.
    Anything else already in `dest` is never overwritten.
    """
    if extracted(archive, dest):
        return False
    marker = _marker(archive)
    owned = {name for name in _recorded_entries(archive) or [] if os.path.lexists(dest / name)}
    staging = archive.with_name(f".{archive.name}.extracting")
    try:
        shutil.rmtree(staging, ignore_errors=True)
        if not owned:
            marker.unlink(missing_ok=True)  # stale: the entries it names are all gone (or it names none)
        _extract_checked(archive, staging, str(archive))
        if nested:
            for inner in sorted(p for p in staging.iterdir() if p.suffix.lower() in (".rar", ".zip")):
                _extract_checked(inner, staging, f"{inner.name} inside {archive}")
                inner.unlink()
        dest.mkdir(parents=True, exist_ok=True)
        entries = sorted(entry.name for entry in staging.iterdir())
        kept = owned & set(entries)
        taken = [str(dest / name) for name in entries if name not in kept and os.path.lexists(dest / name)]
        if taken:
            raise MstaError(
                f"cannot extract {archive}: {', '.join(taken[:3])} already exist{'s' if len(taken) == 1 else ''} "
                "and msta never overwrites what it did not extract there itself; move them away and rerun, "
                "or extract the archive by hand"
            )
        write_text_atomic(marker, "".join(f"{name}\n" for name in entries))
        for name in entries:
            if name not in kept:
                os.replace(staging / name, dest / name)
    except OSError as error:
        raise _write_failure(archive, error) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def list_members(archive: Path, label: str | None = None) -> list[Member]:
    """The archive's entries, from zipfile or the RAR tool's listing; `label` names the archive in errors."""
    label = label or str(archive)
    if archive.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(archive) as handle:
                return [_zip_member(handle, info) for info in handle.infolist()]
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise MstaError(f"{label} is not a readable zip ({error}); delete it and download it again") from None
    kind, tool = _require_rar_tool(label)
    if kind == "bsdtar":
        return _parse_bsdtar(label, _run([tool, "-tvf", str(archive)], label))
    if kind == "7z":
        return _parse_7z(_run([tool, "l", "-slt", "-ba", str(archive)], label))
    return _parse_unrar(_run([tool, "lta", "-c-", str(archive)], label))


def unsafe_members(members: list[Member]) -> list[str]:
    """`name: why` for every member that would be written, or could write, outside the target folder.

    A hard link's target is a path from the archive's root (tar, RAR and 7-Zip store it so) and must
    be a file of the archive; every symbolic link is refused, whatever it points to.
    """
    files = {posixpath.normpath(m.name.replace("\\", "/")) for m in members if m.kind == FILE}
    problems = []
    for member in members:
        name = member.name.replace("\\", "/")
        target = (member.target or "").replace("\\", "/")
        if _absolute(name):
            problems.append(f"{member.name}: absolute path")
        elif ".." in name.split("/"):
            problems.append(f"{member.name}: '..' in path")
        elif member.kind == SYMLINK:
            problems.append(f"{member.name}: symbolic link{f' to {member.target}' if member.target else ''}")
        elif member.kind == HARDLINK and (_absolute(target) or ".." in target.split("/")):
            problems.append(f"{member.name}: hard link to {member.target} outside the folder")
        elif member.kind == HARDLINK and posixpath.normpath(target or ".") not in files:
            problems.append(f"{member.name}: hard link to {member.target or 'an unknown target'}, not a file of the archive")
    return problems


def _extract_checked(archive: Path, target: Path, label: str) -> None:
    """List, refuse unsafe members, extract into `target`, then check that no link landed there."""
    problems = unsafe_members(list_members(archive, label))
    if problems:
        links = " (dataset archives hold no symbolic links, and one lets later members be written anywhere)"
        raise InputError(
            f"refusing to extract {label}: {len(problems)} of its members could write outside the target folder: "
            + "; ".join(problems[:5])
            + (links if any(": symbolic link" in problem for problem in problems) else "")
        )
    target.mkdir(parents=True, exist_ok=True)
    if archive.suffix.lower() == ".zip":
        _extract_zip(archive, target, label)
    else:
        kind, tool = _require_rar_tool(label)
        commands = {
            "bsdtar": [tool, "-xf", str(archive), "-C", str(target)],
            "7z": [tool, "x", "-y", "-bd", f"-o{target}", str(archive)],
            "unrar": [tool, "x", "-o+", "-idq", "-c-", str(archive), f"{target}{os.sep}"],
        }
        _run(commands[kind], label)
    for path in target.rglob("*"):
        if path.is_symlink():
            raise InputError(
                f"refusing {label}: {path.relative_to(target)} is a symbolic link (to {os.readlink(path)}), which "
                "its listing did not show; dataset archives hold none"
            )


def _extract_zip(archive: Path, target: Path, label: str) -> None:
    """Extract member by member, so that a damaged one is named."""
    with zipfile.ZipFile(archive) as handle:
        for info in handle.infolist():
            try:
                handle.extract(info, target)
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                raise MstaError(
                    f"damaged archive {label}: {info.filename} cannot be read ({error}); delete the archive and "
                    "download it again"
                ) from None
            except (NotImplementedError, RuntimeError) as error:  # an unknown compression method, a password
                raise MstaError(f"cannot extract {label}: {info.filename}: {error}; extract it by hand") from None


def _write_failure(archive: Path, error: OSError) -> MstaError:
    """Writing next to the archive failed: say whether space or permission is missing, not a traceback."""
    where = f" ({error.filename})" if error.filename else ""
    if error.errno == errno.ENOSPC:
        return MstaError(
            f"cannot extract {archive}: no space left on the disk holding {archive.parent}{where}; it needs about "
            "as much free space as the archive's content; free some and rerun"
        )
    return MstaError(
        f"cannot extract {archive}: {error.strerror or error}{where}; msta extracts into the folder holding the "
        "archive, so it must be writable; or extract the archive by hand"
    )


def _is_unrar_free(path: str) -> bool:
    return "unrar-free" in os.path.realpath(path)


def _require_rar_tool(label: str) -> tuple[str, str]:
    tool = rar_tool()
    if tool is None:
        unrar = shutil.which("unrar")
        found = (
            f"the unrar on PATH ({unrar}) is unrar-free, not RARLAB's unrar, and cannot be used; "
            if unrar is not None and _is_unrar_free(unrar)
            else ""
        )
        raise MstaError(f"cannot extract {label}: no RAR extractor found; {found}{INSTALL_HINT}, or extract it by hand")
    return tool


def _run(command: list[str], label: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
    if result.returncode == 0:
        return result.stdout
    output = (result.stderr or result.stdout).strip().splitlines()[-3:]
    refusals = [line for line in output if SEVEN_ZIP_UNSAFE_LINK in line]
    if refusals:
        raise InputError(f"refusing {label}: {refusals[0].strip()}, outside the folder")
    said = f"{Path(command[0]).name} failed on {label}: {' / '.join(output)}"
    if NO_SPACE.search(said):
        raise MstaError(f"{said}: no space left on the disk; free some next to the archive and rerun")
    if DAMAGED.search(said):
        raise MstaError(f"{said}: the archive is damaged; delete it and download it again")
    if UNREADABLE.search(said):
        raise MstaError(f"{said} ({INSTALL_HINT} if this one cannot read this archive)")
    raise MstaError(said)


def _marker(archive: Path) -> Path:
    return archive.with_name(f".{archive.name}.extracted")


def _recorded_entries(archive: Path) -> list[str] | None:
    """The entries the marker names; None without a marker (an empty one is from an msta that named none)."""
    try:
        return _marker(archive).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return []


def _absolute(name: str) -> bool:
    return name.startswith("/") or re.match(r"^[A-Za-z]:", name) is not None


def _zip_member(handle: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        return Member(info.filename, SYMLINK, handle.read(info).decode("utf-8", "replace"))
    return Member(info.filename, FOLDER if info.is_dir() else FILE)


def _parse_bsdtar(label: str, listing: str) -> list[Member]:
    members = []
    for line in listing.splitlines():
        match = BSDTAR_LINE.match(line)
        if match is None:
            raise MstaError(
                f"cannot read bsdtar's listing of {label}: {line!r}; refusing to extract what cannot be checked"
            )
        mode, rest = match["mode"], match["rest"]
        if mode.startswith("l"):
            name, target = rest.split(" -> ", 1)
            members.append(Member(name, SYMLINK, target))
        elif " link to " in rest:
            name, target = rest.split(" link to ", 1)
            members.append(Member(name, HARDLINK, target))
        else:
            members.append(Member(rest, FOLDER if mode.startswith("d") else FILE))
    return members


def _parse_7z(listing: str) -> list[Member]:
    """7z -slt blocks of `Key = value` lines; a RAR's symbolic links show in the attributes, without targets."""
    members = []
    for block in listing.strip().split("\n\n"):
        fields = dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
        if "Path" not in fields:
            continue
        modes = f" {fields.get('Attributes', '')} {fields.get('Mode', '')}"
        hard = fields.get("Hard Link") or fields.get("Copy Link")
        if " l" in modes or fields.get("Symbolic Link"):
            members.append(Member(fields["Path"], SYMLINK, fields.get("Symbolic Link", "")))
        elif hard:
            members.append(Member(fields["Path"], HARDLINK, hard))
        else:
            folder = fields.get("Folder") == "+" or " D" in modes
            members.append(Member(fields["Path"], FOLDER if folder else FILE))
    return members


def _parse_unrar(listing: str) -> list[Member]:
    """RARLAB `unrar lta` blocks with `Name:`, `Type:` and, for links, `Target:` lines.

    Types: File, Directory, Unix/Windows symbolic link, Junction, Hard link, File reference (a copy of another member).
    """
    members, current = [], {}
    for line in listing.splitlines() + [""]:
        key, _, value = line.strip().partition(": ")
        if key in ("Name", "Type", "Target"):
            current[key] = value
        elif not line.strip() and "Name" in current:
            kind = current.get("Type", "").lower()
            if "hard link" in kind or "reference" in kind:
                members.append(Member(current["Name"], HARDLINK, current.get("Target", "")))
            elif "link" in kind or "junction" in kind:
                members.append(Member(current["Name"], SYMLINK, current.get("Target", "")))
            else:
                members.append(Member(current["Name"], FOLDER if "directory" in kind else FILE))
            current = {}
    return members
