"""Atomic writes: an interrupted write leaves the old file and no temporary file behind."""

from __future__ import annotations

import os

import pytest
import yaml

from msta_cli.core.prepare.annotations import Row
from msta_cli.core.prepare.writer import MANIFEST, atomic_write, labels_csv, manifest_yaml, rows_csv, write_outputs


def test_csv_formats():
    assert rows_csv([Row("a b/c.avi", 3)]) == b"path,label\na b/c.avi,3\n"
    assert labels_csv(["Putting something, somewhere", "x"]) == b'id,name\n0,"Putting something, somewhere"\n1,x\n'


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_part(tmp_path, monkeypatch):
    target = tmp_path / "train.csv"
    target.write_bytes(b"old")

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new contents")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["train.csv"]


def test_the_manifest_is_written_last_and_absent_while_a_run_is_incomplete(tmp_path, monkeypatch):
    write_outputs(tmp_path, {"a.csv": b"1", MANIFEST: manifest_yaml({"files": ["a.csv", MANIFEST]})})
    calls = []

    def failing(path, data):
        calls.append(path.name)
        raise OSError("disk full")

    monkeypatch.setattr("msta_cli.core.prepare.writer.atomic_write", failing)
    with pytest.raises(OSError):
        write_outputs(tmp_path, {"a.csv": b"2", MANIFEST: b"files: []\n"})
    assert calls == ["a.csv"] and not (tmp_path / MANIFEST).exists() and (tmp_path / "a.csv").read_bytes() == b"1"


def test_stale_files_of_the_previous_run_are_removed_but_nothing_outside_out(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "keep.csv").write_text("mine")
    write_outputs(out, {"old.csv": b"1", MANIFEST: manifest_yaml({"files": ["old.csv", "../keep.csv", MANIFEST]})})
    assert write_outputs(out, {MANIFEST: manifest_yaml({"files": [MANIFEST]})}) == ["old.csv"]
    assert (tmp_path / "keep.csv").exists() and yaml.safe_load((out / MANIFEST).read_text()) == {"files": [MANIFEST]}
