"""Class descriptions for the consistency loss, from msta's file or the authors' index-keyed pair.

msta format (one JSON file, keyed by class name):
    {"brush hair": {"spatial": ["...", "..."], "temporal": ["...", "..."]}, ...}
Authors' format (two files, `{N}_s_description_{ds}.json` and `{N}_t_...`, keyed by the class
index as a string into the label list of that split):
    {"0": ["...", "..."], "1": [...], ...}
"""

from __future__ import annotations

import json
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
    if config.file:
        return read_msta_descriptions(config.file)
    if config.spatial and config.temporal and config.labels:
        return read_indexed_descriptions(config.spatial, config.temporal, read_labels(config.labels))
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


def read_indexed_descriptions(spatial_path: str | Path, temporal_path: str | Path, labels: list[str]) -> Descriptions:
    """Resolve the authors' `{"index": [...]}` files through the label list they index."""
    spatial = _by_label(spatial_path, labels)
    temporal = _by_label(temporal_path, labels)
    return {name: ClassDescription(spatial[name], temporal[name]) for name in labels if name in spatial and name in temporal}


def descriptions_for(descriptions: Descriptions, class_names: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Spatial and temporal sentences in label order; every class must have both."""
    missing = [name for name in class_names if name not in descriptions]
    if missing:
        raise InputError(f"no descriptions for {len(missing)} of {len(class_names)} classes: {', '.join(missing)}")
    return (
        [list(descriptions[name].spatial) for name in class_names],
        [list(descriptions[name].temporal) for name in class_names],
    )


def _by_label(path: str | Path, labels: list[str]) -> dict[str, tuple[str, ...]]:
    data = _read_json_object(path)
    resolved = {}
    for key, sentences in data.items():
        if not key.isdigit() or int(key) >= len(labels):
            raise InputError(f"{path}: key '{key}' is not a class index of the {len(labels)}-class label list")
        resolved[labels[int(key)]] = _sentences(sentences, path, key)
    return resolved


def _read_json_object(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: description file not found") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object keyed by class")
    return data


def _sentences(value: object, path: str | Path, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
        raise InputError(f"{path}: '{key}' must be a non-empty list of sentences")
    return tuple(value)
