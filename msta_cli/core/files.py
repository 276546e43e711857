"""Crash-safe file writing shared by everything that writes results, checkpoints or lists."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[str]:
    """Yield a temporary path beside `target`; rename it over `target` only if the block succeeds.

    The temporary file is created with mode 0o666 and the kernel applies the umask (and any
    default ACL), so the result has the permissions a plain open() would give, not mkstemp's
    0o600 that hid prepared datasets and checkpoints from teammates. Reading the umask instead
    would mean os.umask(0) and back, which races with threads creating files meanwhile.
    """
    target = Path(target)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # O_EXCL: never reuse a file
    try:
        yield str(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    """Replace `target` by `data` in one step, synced to disk first: a crash leaves the old file or the new one."""
    with atomic_path(target) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_text_atomic(target: str | Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))
