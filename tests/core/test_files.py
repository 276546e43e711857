"""Atomic writes: all or nothing, and the permissions a plain open() gives, so teammates can read the results."""

from __future__ import annotations

import os
import stat

import pytest

from msta_cli.core.files import atomic_path, write_bytes_atomic, write_text_atomic


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_get_the_mode_open_would_give(tmp_path, umask):
    write_bytes_atomic(tmp_path / "a.csv", b"1")
    write_text_atomic(tmp_path / "b.json", "{}")
    with atomic_path(tmp_path / "c.safetensors") as temporary, open(temporary, "wb") as handle:
        handle.write(b"weights")
    with open(tmp_path / "plain.txt", "w"):
        pass
    assert [mode(tmp_path / name) for name in ("a.csv", "b.json", "c.safetensors")] == [0o644] * 3
    assert mode(tmp_path / "plain.txt") == 0o644


def test_the_umask_still_decides(tmp_path, umask):
    umask(0o077)
    write_bytes_atomic(tmp_path / "private.csv", b"1")
    assert mode(tmp_path / "private.csv") == 0o600


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_part(tmp_path, monkeypatch):
    target = tmp_path / "train.csv"
    target.write_bytes(b"old")

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(target, b"new contents")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["train.csv"]


def test_a_failing_block_leaves_the_target_untouched(tmp_path):
    target = tmp_path / "weights.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        open(temporary, "wb").close()
        raise RuntimeError("save failed")
    assert os.listdir(tmp_path) == []
