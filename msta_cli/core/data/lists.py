"""Read a prepared dataset's label list and split lists, rejecting bad rows with their line.

These files are user-editable, so every problem is an InputError that names the file, the
line (the header is line 1) and the offending value.
"""

from __future__ import annotations

import csv
import re
import warnings
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
    # the video opened is the path checked: spaces around a cell are a spreadsheet's, not the file's
    table["path"] = table["path"].str.strip()
    if each_video_once:
        repeated = table[table["path"].duplicated(keep=False)]
        if not repeated.empty:
            video, lines = next(iter(repeated.groupby("path").groups.items()))
            raise InputError(
                f"{path}: lines {', '.join(map(str, lines))}: video {video!r} is listed "
                f"{len(lines)} times; a test set lists each video once "
                f"({repeated['path'].nunique()} videos are repeated)"
            )
    for line, record in table.iterrows():
        if not record["path"]:
            raise InputError(f"{path}: line {line}: empty video path")
        label = record["label"].strip()
        if not (_CLASS_ID.fullmatch(label) and int(label) < num_classes):
            raise InputError(
                f"{path}: line {line}: label {record['label']!r} is not a class id "
                f"in 0..{num_classes - 1}"
            )
    table["label"] = table["label"].str.strip().astype("int64")
    return table.reset_index(drop=True)


# ASCII digits only: str.isdigit also accepts "²" (which int() refuses) and "١" (Arabic-Indic one)
_CLASS_ID = re.compile(r"[0-9]+")


def _read_csv(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """All cells as text, blank lines dropped, indexed by their line number in the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        # index_col=False: where every row has one field more than the header (a trailing comma),
        # pandas would otherwise make the first column the index and shift every other column
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False)
    except pd.errors.ParserWarning:
        raise InputError(_longer_than_header(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable CSV file ({error})") from error
    table.columns = table.columns.str.strip()
    missing = [column for column in columns if column not in table.columns]
    if missing:
        found = ", ".join(repr(column) for column in table.columns)
        hint = ""
        if len(table.columns) == 1 and " " in table.columns[0]:
            hint = (
                "; this looks like a space-separated list such as ViFi-CLIP's, which "
                "`msta prepare DATASET SOURCE --vifi-clip-splits DIR` converts"
            )
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must be {','.join(columns)} "
            f"(found {found}){hint}"
        )
    table.index = table.index + 2
    table = table[(table != "").any(axis=1)]
    if table.empty:
        raise InputError(f"{path}: no rows after the header")
    return table


def _longer_than_header(path: Path) -> str:
    """Where the rows have more fields than the header: pandas only says that some do."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = csv.reader(file)
        width = len(next(rows))
        for row in rows:
            if len(row) > width:
                return (
                    f"{path}: line {rows.line_num}: {len(row)} fields where the header has {width} "
                    '(a trailing comma, or a comma in a path that is not quoted: "a,b.mp4")'
                )
    return f"{path}: rows have more fields than the header"
