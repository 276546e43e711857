"""Archive extraction refuses members that escape the target, before writing anything."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.prepare import PrepareOptions, archives, prepare
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

SEVEN_ZIP = next(filter(None, map(shutil.which, ("7z", "7zz", "7za"))), None)
FIXTURES = Path(__file__).parent / "fixtures"
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
    pins = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in source.glob("*.rar")}  # not official
    report = prepare(PrepareOptions(dataset="hmdb51", source=source, out=tmp_path / "out", workers=2, sha256=pins))
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


def test_7z_listing():
    seven = (
        "Path = d\nFolder = +\nAttributes = D drwxr-xr-x\n\nPath = d/link\nFolder = -\nAttributes =  lrwxrwxrwx\n\n"
        "Path = d/a b.txt\nFolder = -\nAttributes =  -rw-r--r--\n"
    )
    assert _parse_7z(seven) == [Member("d"), Member("d/link", ""), Member("d/a b.txt")]


def test_unrar_listing_as_rarlab_unrar_prints_it():
    """Recorded: RARLAB unrar 5.80 (built from its source) on write_rar(..., links=...) of the test below."""
    listing = (FIXTURES / "unrar-5.80-lta-links.txt").read_text()
    assert _parse_unrar(listing) == [
        Member("d/a b.txt"), Member("d/sub/c.txt"), Member("d/ok", "a b.txt"), Member("d/out", "../../etc")
    ]


@pytest.mark.parametrize("name", ["bsdtar", "7z", "7zz", "7za", "unrar"])
def test_each_installed_rar_tool_lists_extracts_and_refuses(tmp_path, monkeypatch, name):
    executable = shutil.which(name)
    if executable is None:
        pytest.skip(f"{name} not installed")
    monkeypatch.setattr(shutil, "which", lambda wanted: executable if wanted == name else None)
    if rar_tool() is None:
        pytest.skip(f"{executable} cannot read RAR (unrar-free, or a 7-Zip without the RAR codec)")
    good = write_rar(tmp_path / "src" / "good.rar", {"d/a b.txt": b"a", "d/sub/c.txt": b"c"}, {"d/ok": "a b.txt"})
    folders = {"d", "d/sub"}  # listed as entries by some tools, not by others
    listed = {member.name: member.link for member in list_members(good) if member.name not in folders}
    assert listed == {"d/a b.txt": None, "d/sub/c.txt": None, "d/ok": listed["d/ok"]}
    assert listed["d/ok"] in ("a b.txt", "")  # 7-Zip lists links without their targets
    assert extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "sub" / "c.txt").read_text() == "c"
    assert os.readlink(tmp_path / "out" / "d" / "ok") == "a b.txt"
    bad = write_rar(tmp_path / "src" / "bad.rar", {"d/a.txt": b"a"}, {"d/out": "../../etc"})
    with pytest.raises(InputError, match=r"refusing .*bad\.rar.*d/out.*\.\./\.\./etc"):
        extract(bad, tmp_path / "bad-out")
    assert not (tmp_path / "bad-out").exists()


def fake_seven_zip(folder: Path, format_lines: str) -> Path:
    """An executable that answers `7z i` with these lines of its Formats table."""
    folder.mkdir(parents=True)
    script = folder / "7z"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n\nFormats:\n{format_lines}\n\nCodecs:\nEOF\n")
    script.chmod(0o755)
    return script


def test_a_7zip_without_the_rar_codec_is_not_used_for_rar(tmp_path, monkeypatch):
    without = fake_seven_zip(tmp_path / "debian", "   C...F...  7z       7z\n   C...FM..  zip      zip z01")
    with_rar = fake_seven_zip(tmp_path / "full", "   C...F...  7z       7z\n   ........  Rar      rar r00   R a r !")
    for tool, expected in [(without, None), (with_rar, ("7z", str(with_rar)))]:
        monkeypatch.setattr(shutil, "which", lambda name, tool=tool: str(tool) if name == "7z" else None)
        assert rar_tool() == expected


@pytest.mark.skipif(SEVEN_ZIP is None, reason="7-Zip not installed")
def test_7zip_listing_and_extraction_with_the_real_tool(tmp_path, monkeypatch):
    """7-Zip lists links without their targets; a link out is still refused, before anything lands."""
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "a b.txt").write_text("a")
    (tree / "d" / "ok").symlink_to("a b.txt")

    def seven_zip(name: str) -> Path:
        archive = tmp_path / "src" / name
        subprocess.run([SEVEN_ZIP, "a", "-snl", "-bd", str(archive), "d"], cwd=tree, check=True, capture_output=True)
        return archive

    good = seven_zip("good.7z")
    (tree / "d" / "out").symlink_to("../../etc")
    bad = seven_zip("bad.7z")
    monkeypatch.setattr(archives, "rar_tool", lambda: ("7z", SEVEN_ZIP))  # 7-Zip's own format stands in for RAR

    assert sorted(list_members(good), key=lambda member: member.name) == [Member("d"), Member("d/a b.txt"), Member("d/ok", "")]
    assert extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "a b.txt").read_text() == "a"
    assert os.readlink(tmp_path / "out" / "d" / "ok") == "a b.txt"
    # 7-Zip itself refuses the link (msta's own check of extracted links would otherwise)
    with pytest.raises(InputError, match=r"refusing .*bad\.7z: .*Dangerous link path.* d/out : \.\./\.\./etc"):
        extract(bad, tmp_path / "bad-out")
    assert not (tmp_path / "bad-out").exists()
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == [".good.7z.extracted", "bad.7z", "good.7z"]


@pytest.mark.skipif(shutil.which("bsdtar") is None, reason="bsdtar not installed")
def test_links_out_are_refused_after_extraction_when_the_listing_hides_their_targets(tmp_path, monkeypatch):
    archive = write_rar(tmp_path / "src" / "links.rar", {"d/a.txt": b"a"}, {"d/ok": "a.txt", "d/out": "../../etc"})
    assert unsafe_members(list_members(archive)) == ["d/out: link to ../../etc outside the folder"]
    # the safety net for listings without link targets (7-Zip's): check what was extracted
    listed = archives.list_members
    monkeypatch.setattr(
        archives, "list_members", lambda path: [Member(m.name, "" if m.link else None) for m in listed(path)]
    )
    with pytest.raises(InputError, match=r"refusing .*links\.rar: d/out links to \.\./\.\./etc, outside the folder"):
        extract(archive, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["links.rar"]
    assert not (tmp_path / "out").exists()
