"""Write the prepared files so that no reader ever sees half a file or a half-updated set.

Every file goes to a temporary file in its own folder and is renamed over the old one
(`os.replace` is atomic on one file system). The manifest (`dataset.yaml`) is removed first and
written last, so a folder with a manifest holds one complete run; files the previous run's
manifest listed and this run does not write are removed, so no stale list survives a rerun.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from msta_cli.core.prepare.annotations import Problem, Row

MANIFEST = "dataset.yaml"


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` by `data` in one step; an interruption leaves the old file or none, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
    """Write `files` (relative name -> bytes, including the manifest) below `out`; returns the stale files removed."""
    previous = _previous_files(out / MANIFEST)
    (out / MANIFEST).unlink(missing_ok=True)
    for name, data in files.items():
        if name != MANIFEST:
            atomic_write(out / name, data)
    stale = sorted(name for name in previous - set(files) if _inside(out, name))
    for name in stale:
        (out / name).unlink(missing_ok=True)
    atomic_write(out / MANIFEST, files[MANIFEST])
    return stale


def _csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, lineterminator="\n").encode()


def _previous_files(manifest: Path) -> set[str]:
    """The files an earlier run wrote, from its manifest; none if there is no readable one."""
    try:
        files = (yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}).get("files", [])
    except (OSError, yaml.YAMLError, AttributeError):
        return set()
    return {name for name in files if isinstance(name, str)}


def _inside(out: Path, name: str) -> bool:
    """Only ever delete files below `out`, whatever an edited manifest says."""
    return (out / name).resolve().is_relative_to(out.resolve())
