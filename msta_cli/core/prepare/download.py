"""Fetch the official HMDB51/UCF101 archives: resumable (HTTP Range on a `.part` file) and checksummed.

The publishers list no checksums, and the servers could not be reached when this was written, so
the table pins the sha256 that torchvision's dataset code recorded for the same URLs
(torchvision/prototype/datasets/_builtin/hmdb51.py and ucf101.py); TensorFlow Datasets records
the same value for the UCF101 split lists (tensorflow_datasets/url_checksums/ucf101.txt). The
pins also vouch for copies from mirrors, which HMDB51 users often need. After a download msta
stores the archive's sha256 in `<archive>.sha256` as well, a cache that spares re-hashing it on
the next run (skipped where SOURCE cannot be written). A `--sha256 NAME=HEX` pin overrides
the table, e.g. for a copy the publisher has since re-packed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.prepare.progress import Progress

CHUNK = 1 << 20
RECEIVE = 1 << 16  # the most read from the network at once: each piece is in the `.part` before the next is read
TIMEOUT_S = 60


@dataclass(frozen=True)
class OfficialArchive:
    """One archive as its publisher serves it, where its content goes below SOURCE, and whether it holds the videos."""

    filename: str
    url: str
    sha256: str | None = None
    into: str = ""
    nested: bool = False
    videos: bool = False


OFFICIAL_ARCHIVES = {
    "hmdb51": (
        OfficialArchive(
            "hmdb51_org.rar",
            "http://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/hmdb51_org.rar",
            sha256="9e714a0d8b76104d76e932764a7ca636f929fff66279cda3f2e326fa912a328e",
            into="hmdb51_org",
            nested=True,
            videos=True,
        ),
        OfficialArchive(
            "test_train_splits.rar",
            "http://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/test_train_splits.rar",
            sha256="229c94f845720d01eb3946d39f39292ea962d50a18136484aa47c1eba251d2b7",
        ),
    ),
    "ucf101": (
        OfficialArchive(
            "UCF101.rar",
            "https://www.crcv.ucf.edu/data/UCF101/UCF101.rar",
            sha256="ca8dfadb4c891cb11316f94d52b6b0ac2a11994e67a0cae227180cd160bd8e55",
            videos=True,
        ),
        OfficialArchive(
            "UCF101TrainTestSplits-RecognitionTask.zip",
            "https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip",
            sha256="5c0d1a53b8ed364a2ac830a73f405e51bece7d98ce1254fd19ed4a36b224bd27",
        ),
    ),
}


def download(url: str, dest: Path, expected_sha256: str | None, progress: Progress) -> str:
    """Download `url` to `dest` (resuming `dest.part`), verify it, store `dest.sha256`; returns the sha256.

    An existing `dest` is not downloaded again, only verified (see `verify_existing`).
    """
    if dest.is_file():
        return verify_existing(dest, expected_sha256, progress)
    _make_folder(dest)
    part = dest.with_name(dest.name + ".part")
    whole = _fetch(url, part, progress)
    actual = sha256_of(part, progress)
    if expected_sha256 is not None and actual != expected_sha256:
        mismatch = f"checksum mismatch for {dest.name} from {url}: expected sha256 {expected_sha256}, got {actual}"
        # Without a size from the server, a body cut short ends like a whole one. Deleting it would throw away
        # what arrived (gigabytes for UCF101.rar) each time a connection drops, so it is kept: the rerun asks
        # for the rest, and the server's answer, 416 (nothing after it) or the missing range, tells a whole
        # file with the wrong content, deleted then, from a cut-off one. (No size and no pin, which every
        # official archive has, leaves nothing to tell them apart: what arrived is taken as the file.)
        if not whole:
            raise MstaError(
                f"{mismatch}; the server did not say how large the file is, so the download may have been cut "
                f"off: rerun to resume ({part.stat().st_size} bytes kept in {part}); if the rerun ends with the same "
                f"mismatch, the server's file is not the expected one: delete {part} and fetch {dest.name} from a "
                f"mirror (--url {dest.name}=URL)"
            )
        part.unlink()
        raise MstaError(f"{mismatch}; the download was deleted, rerun to fetch it again")
    os.replace(part, dest)
    _store_sha256(dest, actual)
    return actual


def verify_existing(path: Path, expected_sha256: str | None, progress: Progress) -> str:
    """Check an archive against the pin, else against the checksum stored after its download (stored now if none)."""
    stored = stored_sha256(path)
    expected = expected_sha256 or stored
    actual = sha256_of(path, progress)
    if expected is not None and actual != expected:
        raise InputError(  # the file in SOURCE is what the user must fix, not the run
            f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}; delete it to download it "
            f"again, or, if this copy is the one you want, accept it with --sha256 {path.name}={actual}"
        )
    if stored is None:
        _store_sha256(path, actual)
    return actual


def stored_sha256(path: Path) -> str | None:
    """The checksum msta stored for `path` (`sha256sum` format), if any: an unreadable or mangled one is none,
    as the archive is hashed anyway."""
    stored = path.with_name(path.name + ".sha256")
    try:
        fields = stored.read_text().split() if stored.is_file() else []
    except (OSError, UnicodeDecodeError):
        return None
    return fields[0].lower() if fields and _is_sha256(fields[0]) else None


def sha256_of(path: Path, progress: Progress) -> str:
    digest, done, total = hashlib.sha256(), 0, path.stat().st_size
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress(f"verify {path.name}", done, total)
    return digest.hexdigest()


def parse_pins(pins: list[str], archives: tuple[OfficialArchive, ...]) -> dict[str, str]:
    """`NAME=HEX` pins from the command line, checked against the dataset's archive names."""
    parsed = _assignments("--sha256", pins, archives, "<64 hex digits>", _is_sha256)
    return {name: digest.lower() for name, digest in parsed.items()}


def parse_urls(urls: list[str], archives: tuple[OfficialArchive, ...]) -> dict[str, str]:
    """`NAME=URL` mirrors from the command line: where --download fetches an archive instead."""
    return _assignments("--url", urls, archives, "<http(s) URL>", lambda url: url.startswith(("http://", "https://")))


def _assignments(
    option: str, values: list[str], archives: tuple[OfficialArchive, ...], expected: str, is_valid: Callable[[str], bool]
) -> dict[str, str]:
    if values and not archives:
        raise InputError(f"{option} applies to the {' and '.join(OFFICIAL_ARCHIVES)} archives only")
    known = {archive.filename for archive in archives}
    parsed = {}
    for value in values:
        name, _, assigned = value.partition("=")
        if name not in known or not is_valid(assigned):
            raise InputError(
                f"{option} {value!r}: expected ARCHIVE={expected} with ARCHIVE one of {', '.join(sorted(known))}"
            )
        parsed[name] = assigned
    return parsed


def _is_sha256(digest: str) -> bool:
    return len(digest) == 64 and all(c in "0123456789abcdefABCDEF" for c in digest)


def _store_sha256(path: Path, digest: str) -> None:
    """Cache the checksum next to the archive, sparing the next run a re-hash. Only a cache: where SOURCE may
    not be written (read-only, another user's archives), the next run hashes the archive again."""
    with contextlib.suppress(OSError):
        path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


def _make_folder(dest: Path) -> None:
    """Create the folder `dest` is downloaded into; a file in its place is the user's to move."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in (dest.parent, *dest.parent.parents) if p.exists() and not p.is_dir()), dest.parent)
        below = f" ({dest.parent})" if blocking != dest.parent else ""
        raise InputError(
            f"{blocking} is a file, not a folder; --download fetches {dest.name} into a folder{below}"
        ) from None
    except OSError as error:
        raise MstaError(f"cannot create the folder {dest.parent}: {error.strerror or error}") from None


def _fetch(url: str, part: Path, progress: Progress) -> bool:
    """Append the rest of `url` to `part`; a server that ignores the Range header makes it start over.

    Returns whether the server vouched for the size, so that `part` is known to be whole. Errors name the
    cause: the network or the server (rerun, or another source) apart from writing `part` (a local matter).
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "msta-prepare", **({"Range": f"bytes={offset}-"} if offset else {})}
    total = None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S) as response:
            if response.status != 206:
                offset = 0
            elif not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                raise MstaError(  # appending another range would corrupt the archive
                    f"downloading {url} failed: asked to resume at byte {offset}, the server sent the range "
                    f"{response.headers.get('Content-Range')!r}; delete {part} and rerun to start over"
                )
            total = _size(response, offset)
            done = _receive(response, part, offset, total, progress)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left after `offset`: the part is complete
            return True
        raise MstaError(f"downloading {url} failed: HTTP {error.code} {error.reason}; {_elsewhere(part)}") from None
    except http.client.IncompleteRead:  # a chunked body cut short; read1 has returned every byte before the cut
        raise _cut_off(url, part, total) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        kept = part.stat().st_size if part.exists() else 0
        advice = f"rerun to resume ({kept} bytes kept in {part})" if kept else f"rerun to retry; {_elsewhere(part)}"
        raise MstaError(f"downloading {url} failed: {getattr(error, 'reason', error)}; {advice}") from None
    # http.client ends a body of known length cut short like a complete one (no IncompleteRead from read1),
    # so a dropped connection would otherwise pass for a finished archive.
    if total is not None and done < total:
        raise _cut_off(url, part, total)
    return total is not None


def _size(response: http.client.HTTPResponse, offset: int) -> int | None:
    """The whole file's size as the response gives it: `offset` plus Content-Length, else Content-Range's total."""
    length = response.headers.get("Content-Length")
    if length:
        return offset + int(length)
    whole = response.headers.get("Content-Range", "").rpartition("/")[2]
    return int(whole) if whole.isdigit() else None


def _receive(
    response: http.client.HTTPResponse, part: Path, offset: int, total: int | None, progress: Progress
) -> int:
    """Write the body into `part` after `offset` as it arrives, so a dropped connection or a killed process
    keeps every byte received; returns the size of `part`. Network errors propagate as they are.

    Unbuffered, so that no write is left pending: a buffered file would retry it on closing and raise the
    disk's error again, in place of the message naming it.
    """
    try:
        handle = open(part, "ab" if offset else "wb", buffering=0)
    except OSError as error:
        raise _unwritable(part, error) from None
    with handle:
        done = offset
        while chunk := response.read1(RECEIVE):
            try:
                written = 0
                while written < len(chunk):  # a raw write may take part of it, e.g. as the disk fills up
                    written += handle.write(chunk[written:])
            except OSError as error:
                raise _unwritable(part, error) from None
            done += len(chunk)
            progress(f"download {part.name.removesuffix('.part')}", done, total)
    return done


def _cut_off(url: str, part: Path, total: int | None) -> MstaError:
    kept = part.stat().st_size
    of_total = f" of {total}" if total is not None else ""
    return MstaError(
        f"downloading {url} failed: the connection closed after {kept}{of_total} bytes; "
        f"rerun to resume ({kept} bytes kept in {part})"
    )


def _unwritable(part: Path, error: OSError) -> MstaError:
    """A download that cannot be written: the disk or the folder, not the server, is what to fix."""
    kept = part.stat().st_size if part.exists() else 0
    resume = f"; {kept} bytes are kept in it, and a rerun once that is fixed resumes from there" if kept else ""
    return MstaError(f"cannot write the download to {part}: {error.strerror or error}{resume}")


def _elsewhere(part: Path) -> str:
    """What to do when a publisher's server is gone: academic servers move or go dark (HMDB51's
    has been unreachable for long spells, and tools have moved to mirrors)."""
    name = part.name.removesuffix(".part")
    return (
        f"if the server stays unavailable, download {name} from a mirror (--url {name}=URL), or put a copy "
        f"into {part.parent} and run msta prepare without --download; either is checked against the official "
        "file's sha256"
    )
