"""Archive extraction refuses members that escape the target, before writing anything."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.prepare import PrepareOptions, prepare
from msta_cli.core.prepare.archives import (
    Member,
    _parse_7z,
    _parse_bsdtar,
    _parse_unrar,
    extract,
    list_members,
    rar_tool,
    unsafe_members,
)
from tests.core.prepare.layouts import build_hmdb51
from tests.core.prepare.rar import write_rar

needs_rar_tool = pytest.mark.skipif(rar_tool() is None, reason="no RAR extractor (bsdtar, 7z or unrar) on PATH")


def make_zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
    return path


def test_unsafe_members():
    members = [
        Member("ok/a.txt"),
        Member("../evil"),
        Member("/etc/passwd"),
        Member("a/../../b"),
        Member("C:\\x"),
        Member("ok/link", "../b.txt"),
        Member("ok/out", "../../b.txt"),
        Member("ok/abs", "/etc"),
        Member("ok/unknown", ""),
    ]
    assert unsafe_members(members) == [
        "../evil: '..' in path",
        "/etc/passwd: absolute path",
        "a/../../b: '..' in path",
        "C:\\x: absolute path",
        "ok/out: link to ../../b.txt outside the folder",
        "ok/abs: link to /etc outside the folder",
    ]


def test_a_zip_with_dotdot_is_refused_before_anything_is_extracted(tmp_path):
    archive = make_zip(tmp_path / "src" / "splits.zip", {"lists/a.txt": b"a", "../evil": b"x"})
    with pytest.raises(
        InputError,
        match=r"refusing to extract .*splits.zip: 1 members escape the target folder: \.\./evil: '\.\.' in path",
    ):
        extract(archive, tmp_path / "src")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["splits.zip"] and not (tmp_path / "evil").exists()


def test_a_zip_with_a_link_out_is_refused(tmp_path):
    archive = make_zip(tmp_path / "links.zip", {"a.txt": b"a"}, {"sneaky": "../../etc"})
    assert list_members(archive) == [Member("a.txt"), Member("sneaky", "../../etc")]
    with pytest.raises(InputError, match="sneaky: link to ../../etc outside the folder"):
        extract(archive, tmp_path / "out")


def test_a_zip_is_extracted_once_through_a_staging_folder(tmp_path):
    archive = make_zip(tmp_path / "lists.zip", {"ucfTrainTestlist/classInd.txt": b"1 A\n"})
    assert extract(archive, tmp_path) and (tmp_path / "ucfTrainTestlist" / "classInd.txt").read_text() == "1 A\n"
    assert not extract(archive, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lists.zip.extracted", "lists.zip", "ucfTrainTestlist"]


def test_a_broken_zip_says_what_to_do(tmp_path):
    (tmp_path / "lists.zip").write_bytes(b"PK not really")
    with pytest.raises(MstaError, match="lists.zip is not a readable zip .*delete it and download it again"):
        extract(tmp_path / "lists.zip", tmp_path)


def test_extraction_never_overwrites(tmp_path):
    archive = make_zip(tmp_path / "lists.zip", {"mine/a.txt": b"new"})
    (tmp_path / "mine").mkdir()
    with pytest.raises(MstaError, match="mine already exist"):
        extract(archive, tmp_path)
    assert not (tmp_path / "mine" / "a.txt").exists() and not (tmp_path / ".lists.zip.extracting").exists()


@needs_rar_tool
def test_a_rar_with_dotdot_or_an_absolute_path_is_refused(tmp_path):
    archive = write_rar(tmp_path / "src" / "evil.rar", {"fine.txt": b"a", "../evil.txt": b"x", "/tmp/abs.txt": b"x"})
    with pytest.raises(
        InputError,
        match=r"2 members escape the target folder: \.\./evil.txt: '\.\.' in path; /tmp/abs.txt: absolute path",
    ):
        extract(archive, tmp_path / "src")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["evil.rar"]


@needs_rar_tool
def test_hmdb51_from_its_official_archives_rar_of_per_class_rars(tmp_path, templates):
    layout = build_hmdb51(tmp_path / "layout", templates, per_class=3)
    source = tmp_path / "source"
    inner = {}
    for folder in sorted((layout / "hmdb51_org").iterdir()):
        members = {f"{folder.name}/{video.name}": video.read_bytes() for video in sorted(folder.iterdir())}
        inner[f"{folder.name}.rar"] = write_rar(tmp_path / "inner" / f"{folder.name}.rar", members).read_bytes()
    write_rar(source / "hmdb51_org.rar", inner)
    splits = {
        f"testTrainMulti_7030_splits/{p.name}": p.read_bytes()
        for p in sorted((layout / "testTrainMulti_7030_splits").iterdir())
    }
    write_rar(source / "test_train_splits.rar", splits)
    report = prepare(PrepareOptions(dataset="hmdb51", source=source, out=tmp_path / "out", workers=2))
    assert report.video_root == (source / "hmdb51_org").absolute() and report.lists["train_1.csv"].written == 2 * 51 - 4
    assert sorted(p.name for p in (source / "hmdb51_org").iterdir())[:2] == ["brush_hair", "cartwheel"]
    assert not list((source / "hmdb51_org").glob("*.rar"))


def test_only_some_archives_present_says_which_is_missing(tmp_path):
    (tmp_path / "UCF101TrainTestSplits-RecognitionTask.zip").write_bytes(b"")
    with pytest.raises(InputError, match="has UCF101TrainTestSplits-RecognitionTask.zip but not UCF101.rar"):
        prepare(PrepareOptions(dataset="ucf101", source=tmp_path, out=tmp_path / "out"))


def test_no_rar_tool_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MstaError, match="no RAR extractor found; install bsdtar .*7-Zip .*unrar"):
        list_members(write_rar(tmp_path / "a.rar", {"a": b""}))


@pytest.mark.skipif(shutil.which("bsdtar") is None, reason="bsdtar not installed")
def test_bsdtar_listing_shows_links(tmp_path):
    archive = make_zip(
        tmp_path / "links.zip", {"d/a.txt": b"a", "d/name with spaces -> x.txt": b"b"}, {"d/ok": "a.txt"}
    )
    listing = subprocess.run(["bsdtar", "-tvf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert _parse_bsdtar(archive, listing) == [
        Member("d/a.txt"),
        Member("d/name with spaces -> x.txt"),
        Member("d/ok", "a.txt"),
    ]


def test_7z_and_unrar_listings():
    seven = (
        "Path = d\nFolder = +\nAttributes = D drwxr-xr-x\n\nPath = d/link\nFolder = -\nAttributes =  lrwxrwxrwx\n\n"
        "Path = d/a b.txt\nFolder = -\nAttributes =  -rw-r--r--\n"
    )
    assert _parse_7z(seven) == [Member("d"), Member("d/link", ""), Member("d/a b.txt")]
    unrar = (
        "\nUNRAR 6.21 freeware\n\nArchive: a.rar\nDetails: RAR 5\n\n        Name: d/a b.txt\n        Type: File\n"
        "        Size: 5\n\n        Name: d/link\n        Type: Symbolic link\n      Target: ../../etc\n"
    )
    assert _parse_unrar(unrar) == [Member("d/a b.txt"), Member("d/link", "../../etc")]
