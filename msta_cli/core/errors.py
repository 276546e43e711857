"""Error types whose messages a user can act on; commands map them to exit codes."""


class MstaError(Exception):
    """A failure msta can explain (exit code 1)."""


class InputError(MstaError):
    """The user's input is wrong: a recipe, a file, an argument (exit code 2)."""
