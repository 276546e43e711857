"""Class descriptions for the consistency loss, from msta's file or the authors' index-keyed pair.

msta format (one JSON file, keyed by class name):
    {"brush hair": {"spatial": ["...", "..."], "temporal": ["...", "..."]}, ...}
Authors' format (two files, `{N}_s_description_{ds}.json` and `{N}_t_...`, keyed by the class
index as a string into the label list of that split):
    {"0": ["...", "..."], "1": [...], ...}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from msta_cli.core.config import DescriptionsConfig
from msta_cli.core.data.lists import read_labels
from msta_cli.core.errors import InputError


@dataclass(frozen=True)
class ClassDescription:
    spatial: tuple[str, ...]
    temporal: tuple[str, ...]


Descriptions = dict[str, ClassDescription]


def load_descriptions(config: DescriptionsConfig) -> Descriptions:
    """Read whichever description source the recipe names."""
    check_description_source(config)
    if config.file:
        return read_msta_descriptions(config.file)
    return read_indexed_descriptions(config.spatial, config.temporal, read_labels(config.labels), config.labels)


def check_description_source(config: DescriptionsConfig) -> None:
    """The recipe names one complete source of descriptions (checked without reading files)."""
    if config.file and (config.spatial or config.temporal):
        raise InputError(
            "loss.descriptions: both `file` and the authors' `spatial`/`temporal` pair are set; "
            "keep one (set the other to null)"
        )
    if not config.file and not (config.spatial and config.temporal and config.labels):
        raise InputError(
            "loss.descriptions: set either `file` (msta format) or all of `spatial`, `temporal` and `labels` "
            "(the authors' index-keyed files and the labels.csv they index), or set loss.consistency_weight=0"
        )


def read_msta_descriptions(path: str | Path) -> Descriptions:
    data = _read_json_object(path)
    descriptions = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"spatial", "temporal"}:
            raise InputError(f"{path}: class '{name}' must map to {{\"spatial\": [...], \"temporal\": [...]}}")
        descriptions[name] = ClassDescription(
            _sentences(entry["spatial"], path, f"{name}.spatial"), _sentences(entry["temporal"], path, f"{name}.temporal")
        )
    return descriptions


def read_indexed_descriptions(
    spatial_path: str | Path, temporal_path: str | Path, labels: list[str], labels_path: str | Path | None = None
) -> Descriptions:
    """Resolve the authors' `{"index": [...]}` files through the label list they index.

    Indices alone cannot tell one list from another, so each file must cover every class of the
    list, and a `_base`/`_novel` file is refused with the other split's label list (SSv2's and
    K400's base and novel lists have the same length: a swap would pass the count).
    """
    if labels_path is not None:
        _check_same_split([spatial_path, temporal_path], labels_path)
    label_list = "the label list" + (f" {labels_path}" if labels_path is not None else "")
    spatial = _by_label(spatial_path, labels, label_list)
    temporal = _by_label(temporal_path, labels, label_list)
    return {name: ClassDescription(spatial[name], temporal[name]) for name in labels}


def descriptions_for(descriptions: Descriptions, class_names: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Spatial and temporal sentences in label order; every class must have both."""
    missing = [name for name in class_names if name not in descriptions]
    if missing:
        raise InputError(f"no descriptions for {len(missing)} of {len(class_names)} classes: {', '.join(missing)}")
    return (
        [list(descriptions[name].spatial) for name in class_names],
        [list(descriptions[name].temporal) for name in class_names],
    )


def _by_label(path: str | Path, labels: list[str], label_list: str) -> dict[str, tuple[str, ...]]:
    data = _read_json_object(path)
    resolved = {}
    for key, sentences in data.items():
        if not key.isdigit() or int(key) >= len(labels):
            raise InputError(
                f"{path}: key '{key}' is not a class index of {label_list} ({len(labels)} classes); "
                "loss.descriptions.labels must be the list this file indexes"
            )
        resolved[labels[int(key)]] = _sentences(sentences, path, key)
    missing = [f"{index} ({name})" for index, name in enumerate(labels) if name not in resolved]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise InputError(
            f"{path}: no sentences for {len(missing)} of the {len(labels)} classes of {label_list}: {shown}; "
            "loss.descriptions.labels must be the list this file indexes (e.g. base_labels.csv for a *_base.json)"
        )
    return resolved


def _check_same_split(description_paths: list[str | Path], labels_path: str | Path) -> None:
    """The authors name their files `..._base.json` / `..._novel.json`; msta prepare names the
    lists `base_labels.csv` / `novel_labels.csv`. Where both say a split, they must agree."""
    named = [(str(path), _split_word(Path(path).stem, r"_(base|novel)$")) for path in description_paths]
    named.append((str(labels_path), _split_word(Path(labels_path).stem, r"^(base|novel)_")))
    splits = {split for _, split in named if split}
    if len(splits) > 1:
        listed = ", ".join(f"{path} ({split})" for path, split in named if split)
        raise InputError(f"loss.descriptions: the files are for different base-to-novel splits: {listed}")


def _split_word(stem: str, pattern: str) -> str | None:
    match = re.search(pattern, stem)
    return match.group(1) if match else None


def _read_json_object(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        where = "" if Path(path).is_absolute() else " (a relative path is read from the current folder, not from data.root)"
        raise InputError(
            f"{path}: description file not found{where}; point loss.descriptions at your files, "
            "or train without the consistency loss: loss.consistency_weight=0"
        ) from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; give the description file inside it") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the description file: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object keyed by class")
    return data


def _sentences(value: object, path: str | Path, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
        raise InputError(f"{path}: '{key}' must be a non-empty list of sentences")
    return tuple(value)
