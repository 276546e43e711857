"""Write the prepared files so that no reader ever sees half a file or a half-updated set.

Every file goes to a temporary file in its own folder and is renamed over the old one
(`os.replace` is atomic on one file system). The manifest (`dataset.yaml`) is removed first and
written last, so a folder with a manifest holds one complete run; files the previous run's
manifest listed and this run does not write are removed, so no stale list survives a rerun.
While the manifest is absent, `PENDING` lists the previous files and this run's: a run
interrupted then leaves the record of every file it may have left, and the next one reads it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.files import write_bytes_atomic
from msta_cli.core.output_paths import check_output
from msta_cli.core.prepare.annotations import Problem, Row, name_some

MANIFEST = "dataset.yaml"
PENDING = "dataset.yaml.incomplete"  # present only while a run writes, or after one was interrupted


def require_output_folder(out: Path) -> None:
    """Fail at the start, not after checking every video, when `out` cannot be the output
    folder or holds files msta did not write; creates nothing."""
    check_output(out, "--out", folder=True)
    foreign = _files_not_written_by_msta(out)
    if foreign:
        raise InputError(
            f"--out {out} holds {name_some(foreign)}, which msta prepare did not write and would overwrite "
            f"(the dataset's own annotations?); pick another output folder, e.g. --out {out / 'msta'}"
        )


def written_files(out: Path) -> set[str]:
    """The files (relative to `out`) an earlier run wrote there, complete or interrupted."""
    return _previous_files(out / MANIFEST) | _previous_files(out / PENDING)


def _files_not_written_by_msta(out: Path) -> list[str]:
    """Files in `out` with a name a run may write (any top-level CSV, the manifest, the protocol
    folders) that no earlier run recorded: SOURCE's own train.csv when `out` is SOURCE."""
    if not out.is_dir():
        return []
    candidates = [*out.glob("*.csv"), out / MANIFEST, *(out / "base2novel").rglob("*"), *(out / "fewshot").rglob("*")]
    names = {path.relative_to(out).as_posix() for path in candidates if path.is_file()}
    return sorted(names - written_files(out))


def rows_csv(rows: list[Row]) -> bytes:
    """A split list: `path,label`."""
    return _csv(pd.DataFrame(rows, columns=["path", "label"]))


def labels_csv(names: list[str]) -> bytes:
    """A label list: `id,name`."""
    return _csv(pd.DataFrame({"id": range(len(names)), "name": names}))


def problems_csv(problems: list[Problem]) -> bytes:
    """The videos left out: `path,reason`."""
    return _csv(pd.DataFrame(problems, columns=["path", "reason"]))


def manifest_yaml(manifest: dict) -> bytes:
    return yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=1000).encode()


def write_outputs(out: Path, files: dict[str, bytes]) -> list[str]:
    """Write `files` (relative name -> bytes, including the manifest) below `out`; returns the stale files removed.

    The files of an interrupted run's `PENDING` record count as previous files too, so that a list it no
    longer writes (train.csv after `--test-fraction 1`) is removed by the next complete run.
    """
    previous = written_files(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(out / PENDING, manifest_yaml({"files": sorted(previous | set(files))}))
        (out / MANIFEST).unlink(missing_ok=True)
        for name, data in files.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            if name != MANIFEST:
                write_bytes_atomic(out / name, data)
        stale = sorted(name for name in previous - set(files) if _inside(out, name))
        for name in stale:
            (out / name).unlink(missing_ok=True)
        _remove_emptied_folders(out, stale)
        write_bytes_atomic(out / MANIFEST, files[MANIFEST])
        (out / PENDING).unlink()
    except OSError as error:  # a full disk or a folder made read-only meanwhile: not a bug to trace back
        raise MstaError(
            f"writing the lists to {out} failed: {error.strerror or error} ({error.filename or out}); "
            f"{out} holds no complete set until a rerun finishes"
        ) from None
    return stale


def _remove_emptied_folders(out: Path, removed: list[str]) -> None:
    """Folders of msta's own (`base2novel/`, `fewshot/`) that the removed files leave empty: a
    folder dataset prepared where HMDB51 was would otherwise keep them, empty."""
    for folder in sorted({(out / name).parent for name in removed}, key=lambda path: -len(path.parts)):
        if folder != out and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, lineterminator="\n").encode()


def _previous_files(manifest: Path) -> set[str]:
    """The files an earlier run wrote, from its manifest or `PENDING` record; none if there is no readable one."""
    try:
        files = (yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}).get("files", [])
    except (OSError, yaml.YAMLError, AttributeError):
        return set()
    return {name for name in files if isinstance(name, str)}


def _inside(out: Path, name: str) -> bool:
    """Only ever delete files below `out`, whatever an edited manifest says."""
    return (out / name).resolve().is_relative_to(out.resolve())
