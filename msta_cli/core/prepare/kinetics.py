"""Kinetics-400/600 annotation CSVs (`label,youtube_id,time_start,time_end,split[,is_cc]`) and K600's new classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from msta_cli.core.data.lists import read_labels
from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import Annotations, Row, find_annotation
from msta_cli.core.prepare.options import PrepareOptions

COLUMNS = ("label", "youtube_id", "time_start", "time_end")
EXPECTED = (
    "annotation CSVs train.csv and validate.csv (or val.csv) with columns label,youtube_id,time_start,time_end "
    "and videos <youtube_id>_<start:06d>_<end:06d>.mp4 anywhere below SOURCE (e.g. <split>/<label>/ or flat)"
)
# Kinetics-600 renamed 12 Kinetics-400 classes; without this map they would count as "new" (232 instead of 220).
K400_TO_K600_RENAMES = {
    "baby waking up": "waking up",
    "balloon blowing": "inflating balloons",
    "changing wheel": "changing wheel (not on bike)",
    "cooking sausages": "cooking sausages (not on barbeque)",
    "dying hair": "dyeing hair",
    "garbage collecting": "person collecting garbage",
    "hugging": "hugging (not baby)",
    "making bed": "making the bed",
    "opening bottle": "opening bottle (not wine)",
    "passing American football (not in game)": "passing american football (not in game)",
    "throwing ball": "throwing ball (not baseball or American football)",
    "tying tie": "tying necktie",
}


def read_kinetics(source: Path, options: PrepareOptions) -> Annotations:
    """Labels are the sorted class names of train+val (the ids every Kinetics list uses)."""
    train_csv = find_annotation(source, "train.csv", options.dataset, EXPECTED, accept=_has_columns)
    val_csv = next(
        (p for p in (train_csv.with_name("validate.csv"), train_csv.with_name("val.csv")) if p.is_file()), None
    )
    if val_csv is None:
        raise InputError(f"{train_csv.parent} has train.csv but no validate.csv or val.csv ({EXPECTED})")
    tables = {"train": _read_csv(train_csv), "val": _read_csv(val_csv)}
    labels = sorted(set(tables["train"]["label"]) | set(tables["val"]["label"]))
    ids = {name: label for label, name in enumerate(labels)}
    splits = {
        split: [Row(_video_name(row), ids[row.label]) for row in table.itertuples(index=False)]
        for split, table in tables.items()
    }
    return Annotations(labels=labels, splits=splits, train_split="train", test_split="val")


def new_k600_classes(k600_labels: list[str], k400_labels: list[str]) -> list[str]:
    """K600 classes that are not K400 classes under either name: the zero-shot target (220 for the full lists)."""
    known = set(k400_labels) | {K400_TO_K600_RENAMES.get(name, name) for name in k400_labels}
    return [name for name in k600_labels if name not in known]


def read_label_names(path: Path) -> list[str]:
    """The --k400-labels list: msta's or ViFi-CLIP's `id,name` CSV, or one name per line."""
    if not path.is_file():
        raise InputError(f"--k400-labels {path}: file not found; pass the Kinetics-400 label list")
    if path.suffix.lower() == ".csv":
        return read_labels(path)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _has_columns(path: Path) -> bool:
    header = _load(path, nrows=0).columns
    return all(column in header for column in COLUMNS)


def _read_csv(path: Path) -> pd.DataFrame:
    if not _has_columns(path):
        raise InputError(f"{path}: expected columns {','.join(COLUMNS)}")
    # only an empty cell is missing: pandas would also read "NA", "None" or "null" as missing,
    # and a YouTube id or a user's class name can be any of them
    table = _load(path, dtype={"label": str, "youtube_id": str}, keep_default_na=False, na_values=[""])
    unlabelled = table["label"].isna()
    if unlabelled.any():
        raise InputError(
            f"{path}: {int(unlabelled.sum())} rows have no label (a test CSV?); use train and validate CSVs"
        )
    times = table[["time_start", "time_end"]].apply(pd.to_numeric, errors="coerce")
    incomplete = table["youtube_id"].isna() | ~np.isfinite(times).all(axis=1)
    if incomplete.any():
        first = int(incomplete.to_numpy().argmax())
        raise InputError(
            f"{path}: {int(incomplete.sum())} rows lack a youtube_id or a number in time_start or time_end, "
            f"first row {first + 1} after the header (youtube_id {table['youtube_id'].iloc[first]}); "
            "the video file names are made of all three"
        )
    return table.assign(time_start=times["time_start"], time_end=times["time_end"])


def _load(path: Path, **options) -> pd.DataFrame:
    """pandas.read_csv, with an empty or malformed file reported by name instead of pandas' traceback."""
    try:
        return pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file; expected a CSV with columns {','.join(COLUMNS)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable CSV ({str(error).strip()})") from None


def _video_name(row) -> str:
    return f"{row.youtube_id}_{int(row.time_start):06d}_{int(row.time_end):06d}.mp4"
