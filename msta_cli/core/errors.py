"""Error types whose messages a user can act on; commands map them to exit codes."""

import difflib
from pathlib import Path

import yaml


class MstaError(Exception):
    """A failure msta can explain (exit code 1)."""


class InputError(MstaError):
    """The user's input is wrong: a recipe, a file, an argument (exit code 2)."""


def did_you_mean(value: str, choices: list[str]) -> str:
    """A ' Did you mean ...?' hint for a misspelt key or name, or '' when nothing is close."""
    close = difflib.get_close_matches(value, choices, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def invalid_yaml(path: Path, error: yaml.MarkedYAMLError) -> InputError:
    """The error for a YAML file that does not parse, naming its line and column.

    A bracket or quote never closed is found at the end of the file, past its last line; there
    the place that matters is where it opened (PyYAML's context mark).
    """
    mark, opened = error.problem_mark, error.context_mark
    problem = error.problem or ""
    if opened is not None and ("<stream end>" in problem or "end of stream" in problem):
        return InputError(
            f"{path}:{opened.line + 1}:{opened.column + 1}: invalid YAML: not closed by the end of the file "
            f"({error.context}: {problem})"
        )
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    return InputError(f"{where}: invalid YAML: {problem}")
