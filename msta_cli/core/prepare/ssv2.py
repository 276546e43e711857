"""Something-Something v2: `*-labels.json`, `*-train.json`, `*-validation.json` and `<id>.webm` videos.

The label files also ship unprefixed (`labels/labels.json`, `train.json`, `validation.json`), as
in the download package distributed since Qualcomm took the dataset over.
"""

from __future__ import annotations

import json
from pathlib import Path

from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import Annotations, Row, find_annotation, parse_int
from msta_cli.core.prepare.options import PrepareOptions

EXPECTED = (
    "something-something-v2-labels.json, something-something-v2-train.json, "
    "something-something-v2-validation.json (or labels.json, train.json, validation.json) and <id>.webm "
    "videos below SOURCE"
)


def read_ssv2(source: Path, options: PrepareOptions) -> Annotations:
    """Labels in labels.json id order; a video's class is its template with the brackets removed."""
    label_file = find_annotation(source, "*labels.json", "ssv2", EXPECTED, accept=_is_label_file)
    ids = {
        _class_name(name): parse_int(str(label), f"{label_file}: the id of {name!r}")
        for name, label in _load(label_file, dict, 'an object {"<class name>": "<id>", ...}').items()
    }
    labels = sorted(ids, key=ids.__getitem__)
    if [ids[name] for name in labels] != list(range(len(labels))):
        raise InputError(f"{label_file}: label ids must run 0..{len(labels) - 1} without gaps")
    prefix = label_file.name.removesuffix("labels.json")
    splits = {
        split: _rows(label_file.with_name(f"{prefix}{suffix}.json"), ids)
        for split, suffix in (("train", "train"), ("val", "validation"))
    }
    return Annotations(labels=labels, splits=splits, train_split="train", test_split="val")


def _rows(path: Path, ids: dict[str, int]) -> list[Row]:
    if not path.is_file():
        raise InputError(f"{path} is missing ({EXPECTED})")
    entries = _load(path, list, 'a list of {"id": ..., "template": ...} entries')
    if not entries:
        raise InputError(f"{path}: an empty list; the official file lists every video of its split, so this copy is damaged")
    rows = []
    for item in entries:
        if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("template"), str):
            raise InputError(f"{path}: every entry needs an id and a template, found {item!r}")
        name = _class_name(item["template"])
        if name not in ids:
            raise InputError(
                f"{path}: video {item['id']} has template {item['template']!r}, which is not in the labels file "
                "(with or without brackets)"
            )
        rows.append(Row(f"{item['id']}.webm", ids[name]))
    return rows


def _is_label_file(path: Path) -> bool:
    return path.name == "labels.json" or path.name.endswith("-labels.json")


def _class_name(template: str) -> str:
    """The class as DATASETS.md defines it: the template without brackets. Some copies of the
    labels file keep them ("Holding [something] next to [something]"), so both sides are stripped."""
    return template.replace("[", "").replace("]", "")


def _load(path: Path, kind: type, expected: str):
    """The file's JSON value, of type `kind`; anything else is an InputError naming the file and `expected`."""
    try:
        value = json.loads(path.read_bytes())
    except ValueError as error:  # JSONDecodeError, or UnicodeDecodeError for bytes that are not UTF-8
        raise InputError(f"{path}: not valid JSON ({error}); expected {expected}") from None
    if not isinstance(value, kind):
        raise InputError(f"{path}: expected {expected}, found {json.dumps(value)[:80]}")
    return value
