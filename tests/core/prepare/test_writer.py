"""The prepared files: their formats, the manifest written last, stale lists removed (after an interrupted run
too), readable by the group."""

from __future__ import annotations

import errno
import os
import stat

import pytest
import yaml

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.files import write_bytes_atomic
from msta_cli.core.prepare.annotations import Row
from msta_cli.core.prepare.writer import (
    MANIFEST,
    PENDING,
    labels_csv,
    manifest_yaml,
    require_output_folder,
    rows_csv,
    write_outputs,
)


def test_csv_formats():
    assert rows_csv([Row("a b/c.avi", 3)]) == b"path,label\na b/c.avi,3\n"
    assert labels_csv(["Putting something, somewhere", "x"]) == b'id,name\n0,"Putting something, somewhere"\n1,x\n'


def outputs(names: list[str]) -> dict[str, bytes]:
    """A run's files: each name, and a manifest listing them."""
    return {**{name: b"1" for name in names}, MANIFEST: manifest_yaml({"files": sorted([*names, MANIFEST])})}


def test_the_manifest_is_written_last_and_absent_while_a_run_is_incomplete(tmp_path, monkeypatch):
    write_outputs(tmp_path, {"a.csv": b"1", MANIFEST: manifest_yaml({"files": ["a.csv", MANIFEST]})})
    calls = []

    def failing(path, data):
        calls.append(path.name)
        if path.name == "a.csv":
            raise OSError("disk full")
        write_bytes_atomic(path, data)

    monkeypatch.setattr("msta_cli.core.prepare.writer.write_bytes_atomic", failing)
    with pytest.raises(MstaError, match="disk full"):
        write_outputs(tmp_path, {"a.csv": b"2", MANIFEST: b"files: []\n"})
    assert calls == [PENDING, "a.csv"] and not (tmp_path / MANIFEST).exists()
    assert (tmp_path / "a.csv").read_bytes() == b"1"
    assert yaml.safe_load((tmp_path / PENDING).read_text()) == {"files": ["a.csv", MANIFEST]}


@pytest.mark.parametrize("interrupted_at", [1, 2, 3, 4])
def test_a_stale_file_is_removed_by_the_next_complete_run_wherever_a_rerun_was_interrupted(
    tmp_path, monkeypatch, interrupted_at
):
    write_outputs(tmp_path, outputs(["train.csv", "test.csv"]))
    calls = []

    def interrupting(path, data):  # the rerun writes its PENDING record, test.csv, labels.csv, the manifest
        calls.append(path.name)
        if len(calls) == interrupted_at:
            raise KeyboardInterrupt
        write_bytes_atomic(path, data)

    monkeypatch.setattr("msta_cli.core.prepare.writer.write_bytes_atomic", interrupting)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(tmp_path, outputs(["test.csv", "labels.csv"]))
    monkeypatch.undo()
    write_outputs(tmp_path, outputs(["test.csv", "labels.csv"]))
    assert sorted(path.name for path in tmp_path.iterdir()) == [MANIFEST, "labels.csv", "test.csv"]


def test_stale_files_of_the_previous_run_are_removed_but_nothing_outside_out(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "keep.csv").write_text("mine")
    write_outputs(out, {"old.csv": b"1", MANIFEST: manifest_yaml({"files": ["old.csv", "../keep.csv", MANIFEST]})})
    assert write_outputs(out, {MANIFEST: manifest_yaml({"files": [MANIFEST]})}) == ["old.csv"]
    assert (tmp_path / "keep.csv").exists() and yaml.safe_load((out / MANIFEST).read_text()) == {"files": [MANIFEST]}


def test_folders_the_stale_files_leave_empty_are_removed_and_others_kept(tmp_path):
    out = tmp_path / "out"
    files = ["fewshot/train_k2.csv", "base2novel/train_s1.csv", MANIFEST]
    write_outputs(out, {name: b"1" for name in files[:2]} | {MANIFEST: manifest_yaml({"files": files})})
    (out / "base2novel" / "notes.txt").write_text("the user's")  # not msta's: its folder stays
    write_outputs(out, {"train.csv": b"1", MANIFEST: manifest_yaml({"files": ["train.csv", MANIFEST]})})
    assert not (out / "fewshot").exists()
    assert sorted(path.name for path in (out / "base2novel").iterdir()) == ["notes.txt"]


def test_prepared_files_are_readable_by_others_under_a_usual_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        write_outputs(tmp_path, {"fewshot/train_k2.csv": b"1", MANIFEST: manifest_yaml({"files": []})})
    finally:
        os.umask(previous)
    modes = {stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("fewshot/train_k2.csv", MANIFEST)}
    assert modes == {0o644}


def test_an_output_folder_holding_files_msta_did_not_write_is_refused_before_any_work(tmp_path):
    (tmp_path / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n")  # the official annotations
    (tmp_path / "videos").mkdir()
    (tmp_path / "notes.txt").write_text("kept\n")
    with pytest.raises(InputError, match=r"holds train.csv, which msta prepare did not write and would overwrite"):
        require_output_folder(tmp_path)
    (tmp_path / "train.csv").unlink()
    write_outputs(tmp_path, outputs(["train.csv", "base2novel/train_s1.csv"]))
    require_output_folder(tmp_path)  # its own earlier output may be replaced
    (tmp_path / "fewshot").mkdir()
    (tmp_path / "fewshot" / "mine.csv").write_text("x\n")
    with pytest.raises(InputError, match=r"holds fewshot/mine.csv"):
        require_output_folder(tmp_path)


def test_a_write_that_fails_is_a_message_and_leaves_the_record_of_the_run(tmp_path, monkeypatch):
    def disk_full(target, data):
        if str(target).endswith("b.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        write_bytes_atomic(target, data)

    monkeypatch.setattr("msta_cli.core.prepare.writer.write_bytes_atomic", disk_full)
    with pytest.raises(MstaError, match=rf"failed: No space left on device \({tmp_path / 'b.csv'}\)") as error:
        write_outputs(tmp_path, outputs(["a.csv", "b.csv"]))
    assert not isinstance(error.value, InputError)
    assert (tmp_path / PENDING).is_file() and not (tmp_path / MANIFEST).exists()
