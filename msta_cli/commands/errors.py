"""One place that turns core errors into messages and exit codes (0 ok, 1 failure, 2 bad input)."""

import functools
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
            stderr.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except MstaError as error:
            stderr.print(f"[bold red]failed:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]
