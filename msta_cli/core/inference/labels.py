"""Label sets for prediction: a text file, a `labels.csv`, or a prepared dataset by name.

Class names become prompts through the model's templates, so a label set is only names; the
order is the order of the scores.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from msta_cli.core.data.lists import read_labels
from msta_cli.core.errors import InputError, did_you_mean

LABELS_CSV = "labels.csv"


@dataclass(frozen=True)
class LabelSet:
    """Class names in score order, and where they came from (for messages)."""

    names: tuple[str, ...]
    source: str


def load_labels(spec: str, data_root: str | Path = "data") -> LabelSet:
    """Read `spec`: a `.csv` (`id,name`), a text file, a prepared dataset folder, or the name of
    one under `data_root` (what `msta prepare` writes)."""
    path = Path(spec)
    if path.is_file():
        names = read_labels(path) if path.suffix.lower() == ".csv" else read_text_labels(path)
        return LabelSet(tuple(names), str(path))
    if path.is_dir():
        if not (path / LABELS_CSV).is_file():
            raise InputError(f"--labels {spec}: folder has no {LABELS_CSV}; is it a dataset prepared by msta prepare?")
        return LabelSet(tuple(read_labels(path / LABELS_CSV)), str(path / LABELS_CSV))
    dataset = Path(data_root) / spec / LABELS_CSV
    if dataset.is_file():
        return LabelSet(tuple(read_labels(dataset)), str(dataset))
    prepared = sorted(p.parent.name for p in Path(data_root).glob(f"*/{LABELS_CSV}"))
    known = f" Prepared datasets in {data_root}/: {', '.join(prepared)}." if prepared else ""
    raise InputError(
        f"--labels {spec!r}: no such file, and no prepared dataset {dataset.parent}.{known}"
        f"{did_you_mean(spec, prepared)}"
    )


def read_text_labels(path: str | Path) -> list[str]:
    """One class name per line; blank lines and lines starting with `#` are ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()  # -sig: Notepad's byte-order mark
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    where: dict[str, list[int]] = defaultdict(list)
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if name and not name.startswith("#"):
            where[name].append(number)
    if not where:
        raise InputError(f"{path}: no class names (one per line; blank lines and # comments are ignored)")
    repeated = [f"{name!r} on lines {', '.join(map(str, numbers))}" for name, numbers in where.items() if len(numbers) > 1]
    if repeated:
        raise InputError(f"{path}: duplicate class names: {'; '.join(repeated)}")
    return list(where)
