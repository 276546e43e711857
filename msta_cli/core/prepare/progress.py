"""How the core reports progress without printing: a callback the command renders."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, "int | None"], None]
"""Called as progress(task, completed, total): total is None while unknown; bytes for downloads."""


def no_progress(task: str, completed: int, total: int | None) -> None:
    """The default callback: report nothing."""
