"""`msta prepare` on the command line: the summary, the default output folder, and exit codes 0/1/2."""

from __future__ import annotations

import hashlib
import io
import shutil

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from msta_cli.cli import app
from msta_cli.commands.prepare import _ProgressBars
from tests.core.prepare.layouts import build_folder, template_videos
from tests.helpers.videos import write_zero_byte

runner = CliRunner()


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return template_videos(tmp_path_factory.mktemp("templates"))


def test_folder_dataset_into_the_default_output_folder(tmp_path, templates, monkeypatch):
    source = build_folder(tmp_path / "mine", templates)
    write_zero_byte(source / "dog" / "broken.mp4")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["prepare", "folder", str(source), "--test-fraction", "0.4", "--workers", "2"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "data" / "folder"
    test = yaml.safe_load((out / "dataset.yaml").read_text())["splits"]["test"]
    assert test["videos"] + test["excluded"] == 6
    assert "msta prepare folder: 3 classes" in result.stdout and "1 videos left out" in result.stdout
    assert "dog/broken.mp4" in result.stdout and "empty file (0 bytes)" in result.stdout
    assert "checked 16 videos; wrote data/folder" in result.stdout


def test_no_check(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates)
    result = runner.invoke(app, ["prepare", "folder", str(source), "--out", str(tmp_path / "out"), "--no-check"])
    assert result.exit_code == 0, result.output
    assert "videos not checked (--no-check)" in result.stdout


def test_a_source_of_another_layout_exits_2_saying_what_was_expected(tmp_path):
    (tmp_path / "clips").mkdir()
    result = runner.invoke(
        app, ["prepare", "hmdb51", str(tmp_path), "--out", str(tmp_path / "out")], terminal_width=400
    )
    assert result.exit_code == 2
    assert "does not look like hmdb51: expected testTrainMulti_7030_splits" in result.output
    assert "found clips/" in result.output and "Traceback" not in result.output


def test_a_malformed_checksum_pin_exits_2(tmp_path):
    result = runner.invoke(app, ["prepare", "ucf101", str(tmp_path), "--sha256", "UCF101.rar=abc"], terminal_width=400)
    assert result.exit_code == 2 and "expected ARCHIVE=<64 hex digits>" in result.output


def test_rar_archives_without_an_extractor_exit_1_naming_what_to_install(tmp_path, monkeypatch):
    pins, rar = [], b"Rar!\x1a\x07\x00"
    for name in ("hmdb51_org.rar", "test_train_splits.rar"):
        (tmp_path / name).write_bytes(rar)
        pins += ["--sha256", f"{name}={hashlib.sha256(rar).hexdigest()}"]  # not the official files: pinned as given
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = runner.invoke(
        app, ["prepare", "hmdb51", str(tmp_path), "--out", str(tmp_path / "out"), *pins], terminal_width=400
    )
    assert result.exit_code == 1
    assert "no RAR extractor found; install bsdtar (Debian/Ubuntu: libarchive-tools" in result.output


def test_an_archive_that_is_not_the_official_file_exits_2_naming_the_option_that_accepts_it(tmp_path):
    rar = b"Rar!\x1a\x07\x00"
    for name in ("hmdb51_org.rar", "test_train_splits.rar"):
        (tmp_path / name).write_bytes(rar)
    result = runner.invoke(app, ["prepare", "hmdb51", str(tmp_path), "--out", str(tmp_path / "out")], terminal_width=400)
    assert result.exit_code == 2
    assert f"accept it with --sha256 hmdb51_org.rar={hashlib.sha256(rar).hexdigest()}" in result.output


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_below_one_exit_2(tmp_path, workers):
    result = runner.invoke(app, ["prepare", "folder", str(tmp_path), "--workers", workers], terminal_width=400)
    assert (
        result.exit_code == 2
        and "Invalid value for '--workers': Input should be greater than or equal to 1" in result.output
    )


@pytest.mark.parametrize(
    ("dataset", "option", "message"),
    [
        ("hmdb51", ["--k400-labels", "k400.csv"], "--k400-labels is for kinetics600 only; hmdb51 does not use it"),
        ("ucf101", ["--test-fraction", "0.2"], "--test-fraction is for folder only; ucf101 does not use it"),
        ("folder", ["--train-per-class", "4"], "--train-per-class is for synthetic only; folder does not use it"),
        (
            "synthetic",
            ["--no-check"],
            "--check/--no-check is for hmdb51, ucf101, kinetics400, kinetics600, ssv2, folder only; "
            "synthetic does not use it",
        ),
        (
            "folder",
            ["--vifi-clip-splits", "."],
            "--vifi-clip-splits: ViFi-CLIP publishes lists for hmdb51, ucf101, kinetics400, kinetics600, ssv2 only, "
            "not folder",
        ),
    ],
)
def test_an_option_the_dataset_does_not_use_exits_2_before_any_work(tmp_path, dataset, option, message):
    out = [] if dataset == "synthetic" else ["--out", str(tmp_path / "out")]  # synthetic writes to SOURCE
    result = runner.invoke(app, ["prepare", dataset, str(tmp_path / "source"), *out, *option], terminal_width=400)
    assert result.exit_code == 2 and message in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def test_an_out_that_is_a_file_exits_2_before_any_work(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates)
    (tmp_path / "out").write_text("mine")
    result = runner.invoke(app, ["prepare", "folder", str(source), "--out", str(tmp_path / "out")], terminal_width=400)
    assert result.exit_code == 2 and "is a file, not a folder" in result.output and "Traceback" not in result.output


def test_a_folder_dataset_with_no_readable_video_exits_1(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates)
    for video in source.rglob("*.mp4"):
        write_zero_byte(video)
    result = runner.invoke(app, ["prepare", "folder", str(source), "--out", str(tmp_path / "out")], terminal_width=400)
    assert result.exit_code == 1 and "train.csv and test.csv would be empty" in result.output
    assert not (tmp_path / "out").exists()


def test_a_broken_annotation_file_exits_2_naming_it(tmp_path):
    (tmp_path / "train.csv").write_text("")
    result = runner.invoke(
        app, ["prepare", "kinetics400", str(tmp_path), "--out", str(tmp_path / "out")], terminal_width=400
    )
    assert result.exit_code == 2 and "train.csv: empty file" in result.output and "Traceback" not in result.output


def test_a_folder_dataset_of_one_class_exits_2_pointing_at_the_folder_holding_the_classes(tmp_path, templates):
    build_folder(tmp_path / "mine" / "my_actions", templates, classes=("red", "green", "blue"), per_class=1)
    result = runner.invoke(
        app, ["prepare", "folder", str(tmp_path / "mine"), "--out", str(tmp_path / "out")], terminal_width=400
    )
    assert result.exit_code == 2 and "a folder dataset needs at least 2 classes" in result.output
    assert f"make SOURCE {tmp_path / 'mine' / 'my_actions'}" in result.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize("below", [[], ["sub"]])
def test_download_into_a_source_that_is_a_file_exits_2(tmp_path, below):
    (tmp_path / "file").write_text("mine")
    source = tmp_path.joinpath("file", *below)
    result = runner.invoke(
        app, ["prepare", "hmdb51", str(source), "--download", "--out", str(tmp_path / "out")], terminal_width=400
    )
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    file = tmp_path / "file"
    assert f"{file} is a file, not a folder; --download fetches hmdb51_org.rar into a folder" in result.output


def test_a_checksum_pin_for_a_dataset_without_archives_exits_2_naming_the_datasets_with_archives(tmp_path):
    result = runner.invoke(app, ["prepare", "kinetics400", str(tmp_path), "--sha256", "x=abc"], terminal_width=400)
    assert result.exit_code == 2 and "--sha256 applies to the hmdb51 and ucf101 archives only" in result.output


@pytest.mark.parametrize(
    ("task", "completed", "total", "amount"),
    [
        ("download UCF101.rar", 1_400_000, None, "1.4 MB"),  # a server that sends no size
        ("download UCF101.rar", 1_400_000, 6_500_000_000, "1.4/6,500.0 MB"),
        ("verify UCF101.rar", 0, 2_000_000, "0.0/2.0 MB"),
        ("check videos", 1200, None, "1,200"),
        ("check videos", 1200, 13320, "1,200/13,320"),
    ],
)
def test_progress_amounts_carry_their_unit(task, completed, total, amount):
    bars = _ProgressBars(Console(file=io.StringIO()))
    bars.update(task, completed, total)
    assert bars.progress.tasks[0].fields["amount"] == amount
