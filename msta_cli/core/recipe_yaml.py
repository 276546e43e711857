"""Reading a recipe: YAML as yaml.safe_load reads it, plus where each key and value was written.

Errors must point at the text the user has to change: a recipe line and column, or the
`key=value` override that set the value; the Locator keeps both.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from msta_cli.core.errors import InputError, invalid_yaml


class Locator:
    """Names where a dotted key's value came from (`recipe.yaml:line:col` or the override that
    set it), so an error points at the text the user has to change."""

    def __init__(self, path: Path, marks: dict[str, tuple[int, int]], texts: dict[str, str]):
        self.path = path
        self.marks = marks
        self.texts = texts
        # dotted key -> (the override as typed, its value's text)
        self.overrides: dict[str, tuple[str, str]] = {}

    def set_by_override(self, key: str, override: str, raw: str) -> None:
        for earlier in [k for k in self.overrides if _within(k, key)]:
            del self.overrides[earlier]
        self.overrides[key] = (override, raw)

    def where(self, key: str) -> str:
        for ancestor in _lineage(key):
            if ancestor in self.overrides:
                return f"override {self.overrides[ancestor][0]}"
        for overridden, (override, _) in self.overrides.items():
            if _within(overridden, key):  # an override inside `key` made its value (`optim.lr.x=1`)
                return f"override {override}"
        for ancestor in _lineage(key):
            if ancestor in self.marks:
                line, column = self.marks[ancestor]
                return f"{self.path}:{line}:{column}"
        return str(self.path)

    def text(self, key: str) -> str | None:
        """The value as written, before YAML typed it; None when only a parent's text is known."""
        if key in self.overrides:
            return self.overrides[key][1]
        if any(ancestor in self.overrides for ancestor in _lineage(key)):
            return None
        return self.texts.get(key)


def _lineage(key: str) -> list[str]:
    """`eval.sets[0].name` -> itself, `eval.sets[0]`, `eval.sets`, `eval`."""
    keys = []
    while key:
        keys.append(key)
        key = key[: max(key.rfind("."), key.rfind("["), 0)]
    return keys


def _within(key: str, ancestor: str) -> bool:
    return key == ancestor or key.startswith((ancestor + ".", ancestor + "["))


def read_recipe(path: Path) -> tuple[dict, Locator]:
    """The recipe as yaml.safe_load reads it, and where each key and value was written."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path}: not UTF-8 text (byte {error.start} is {error.object[error.start]:#04x}); save the recipe as UTF-8"
        ) from None
    try:
        loader = yaml.SafeLoader(text)  # refuses control characters here
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        raise InputError(f"{path}:{line}: invalid YAML: {error.reason} (character {error.character!r})") from None
    try:
        node = loader.get_single_node()
        marks: dict[str, tuple[int, int]] = {}
        texts: dict[str, str] = {}
        _walk(node, "", path, marks, texts, set())
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        raise invalid_yaml(path, error) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: a recipe must be a mapping of keys to values")
    return data, Locator(path, marks, texts)


def _walk(node: yaml.Node | None, key: str, path: Path, marks: dict, texts: dict, active: set[int]) -> None:
    """Record the line and column of every key and list item, and the text of every scalar;
    refuse a key written twice in one mapping (yaml.safe_load would silently keep the last)."""
    if id(node) in active:  # a recursive alias
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple[str, str], yaml.Node] = {}
        for key_node, value_node in node.value:
            child = f"{key}.{key_node.value}" if key else str(key_node.value)
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                first = seen.setdefault((key_node.tag, key_node.value), key_node)
                if first is not key_node:
                    raise InputError(
                        f"{path}:{_line_column(key_node)}: duplicate key '{child}' (first at line "
                        f"{first.start_mark.line + 1}); write each key once"
                    )
            marks[child] = _mark(key_node)
            _walk(value_node, child, path, marks, texts, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            marks[f"{key}[{index}]"] = _mark(item)
            _walk(item, f"{key}[{index}]", path, marks, texts, active)
    elif isinstance(node, yaml.ScalarNode) and key:
        texts[key] = node.value
    active.discard(id(node))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _line_column(node: yaml.Node) -> str:
    line, column = _mark(node)
    return f"{line}:{column}"
