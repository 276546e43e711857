"""The prepared files: their formats, the manifest written last, stale lists removed, readable by the group."""

from __future__ import annotations

import os
import stat

import pytest
import yaml

from msta_cli.core.prepare.annotations import Row
from msta_cli.core.prepare.writer import MANIFEST, labels_csv, manifest_yaml, rows_csv, write_outputs


def test_csv_formats():
    assert rows_csv([Row("a b/c.avi", 3)]) == b"path,label\na b/c.avi,3\n"
    assert labels_csv(["Putting something, somewhere", "x"]) == b'id,name\n0,"Putting something, somewhere"\n1,x\n'


def test_the_manifest_is_written_last_and_absent_while_a_run_is_incomplete(tmp_path, monkeypatch):
    write_outputs(tmp_path, {"a.csv": b"1", MANIFEST: manifest_yaml({"files": ["a.csv", MANIFEST]})})
    calls = []

    def failing(path, data):
        calls.append(path.name)
        raise OSError("disk full")

    monkeypatch.setattr("msta_cli.core.prepare.writer.write_bytes_atomic", failing)
    with pytest.raises(OSError):
        write_outputs(tmp_path, {"a.csv": b"2", MANIFEST: b"files: []\n"})
    assert calls == ["a.csv"] and not (tmp_path / MANIFEST).exists() and (tmp_path / "a.csv").read_bytes() == b"1"


def test_stale_files_of_the_previous_run_are_removed_but_nothing_outside_out(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "keep.csv").write_text("mine")
    write_outputs(out, {"old.csv": b"1", MANIFEST: manifest_yaml({"files": ["old.csv", "../keep.csv", MANIFEST]})})
    assert write_outputs(out, {MANIFEST: manifest_yaml({"files": [MANIFEST]})}) == ["old.csv"]
    assert (tmp_path / "keep.csv").exists() and yaml.safe_load((out / MANIFEST).read_text()) == {"files": [MANIFEST]}


def test_prepared_files_are_readable_by_others_under_a_usual_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        write_outputs(tmp_path, {"fewshot/train_k2.csv": b"1", MANIFEST: manifest_yaml({"files": []})})
    finally:
        os.umask(previous)
    modes = {stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("fewshot/train_k2.csv", MANIFEST)}
    assert modes == {0o644}
