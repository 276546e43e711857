"""One place that turns core errors into messages and exit codes (0 ok, 1 failure, 2 bad input)."""

import functools
import os
from typing import Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from msta_cli.core.errors import InputError, MstaError

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

F = TypeVar("F", bound=Callable)
stderr = Console(stderr=True)


def exits_on_errors(command: F) -> F:
    """Wrap a command so user mistakes print one clear message instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InputError as error:
            _print_once(f"[bold red]error:[/] {escape(str(error))}")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except MstaError as error:
            _print_once(f"[bold red]failed:[/] {escape(str(error))}")
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


def _print_once(message: str) -> None:
    """Printed by rank 0 only (RANK, set by torchrun): each process of a torchrun command meets
    the same recipe or option error, and would print it once per GPU."""
    if os.environ.get("RANK", "0") == "0":
        stderr.print(message, highlight=False, soft_wrap=True)
