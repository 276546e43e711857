"""Read a prepared dataset's label list and split lists, rejecting bad rows with their line.

These files are user-editable, so every problem is an InputError that names the file, the
line (the header is line 1) and the offending value.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from msta_cli.core.errors import InputError


def read_labels(path: str | Path) -> list[str]:
    """Class names from `labels.csv` (`id,name`), where the row for class i has id i."""
    table = _read_csv(path, ("id", "name"))
    line_of: dict[str, int] = {}
    for row, (line, record) in enumerate(table.iterrows()):
        if record["id"].strip() != str(row):
            raise InputError(
                f"{path}: line {line}: id {record['id']!r}, expected {row} "
                "(ids must be 0..C-1 in order)"
            )
        name = record["name"].strip()
        if not name:
            raise InputError(f"{path}: line {line}: empty class name")
        if name in line_of:
            raise InputError(f"{path}: lines {line_of[name]} and {line}: class name {name!r} appears twice")
        line_of[name] = line
    return list(line_of)


def read_split(path: str | Path, num_classes: int, each_video_once: bool = False) -> pd.DataFrame:
    """Videos of a split CSV (`path,label`): a DataFrame with str `path` and int `label`.

    `each_video_once` for test sets, where every video counts once in the accuracy; a training
    list may repeat a video to weight it.
    """
    table = _read_csv(path, ("path", "label"))
    if each_video_once:
        repeated = table[table["path"].str.strip().duplicated(keep=False)]
        if not repeated.empty:
            video, lines = next(iter(repeated.groupby(repeated["path"].str.strip()).groups.items()))
            raise InputError(
                f"{path}: lines {', '.join(map(str, lines))}: video {video!r} is listed "
                f"{len(lines)} times; a test set lists each video once "
                f"({repeated['path'].str.strip().nunique()} videos are repeated)"
            )
    for line, record in table.iterrows():
        if not record["path"].strip():
            raise InputError(f"{path}: line {line}: empty video path")
        label = record["label"].strip()
        if not (label.isdigit() and int(label) < num_classes):
            raise InputError(
                f"{path}: line {line}: label {record['label']!r} is not a class id "
                f"in 0..{num_classes - 1}"
            )
    table["label"] = table["label"].str.strip().astype("int64")
    return table.reset_index(drop=True)


def _read_csv(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """All cells as text, blank lines dropped, indexed by their line number in the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable CSV file ({error})") from error
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must be {','.join(columns)}"
        )
    table.index = table.index + 2
    table = table[(table != "").any(axis=1)]
    if table.empty:
        raise InputError(f"{path}: no rows after the header")
    return table
