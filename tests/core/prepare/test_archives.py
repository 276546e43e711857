"""Archive extraction refuses members that escape the target, before writing anything."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.prepare import PrepareOptions, archives, prepare
from msta_cli.core.prepare.archives import (
    FOLDER,
    HARDLINK,
    SYMLINK,
    Member,
    _parse_7z,
    _parse_bsdtar,
    _parse_unrar,
    extract,
    extracted,
    list_members,
    rar_tool,
    unsafe_members,
)
from tests.core.prepare.layouts import build_hmdb51
from tests.core.prepare.rar import write_rar

SEVEN_ZIP = next(filter(None, map(shutil.which, ("7z", "7zz", "7za"))), None)
FIXTURES = Path(__file__).parent / "fixtures"
needs_rar_tool = pytest.mark.skipif(rar_tool() is None, reason="no RAR extractor (bsdtar, 7z or unrar) on PATH")
needs_bsdtar = pytest.mark.skipif(shutil.which("bsdtar") is None, reason="bsdtar not installed")


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
        Member("ok/sub", FOLDER),
        Member("../evil"),
        Member("/etc/passwd"),
        Member("a/../../b"),
        Member("C:\\x"),
        Member("ok/inside", SYMLINK, "a.txt"),  # even a link inside: dataset archives hold none
        Member("ok/unknown", SYMLINK, ""),
        Member("ok/hard", HARDLINK, "ok/a.txt"),  # from the archive's root, not from ok/
        Member("ok/x/hard", HARDLINK, "./ok/a.txt"),
    ]
    assert unsafe_members(members) == [
        "../evil: '..' in path",
        "/etc/passwd: absolute path",
        "a/../../b: '..' in path",
        "C:\\x: absolute path",
        "ok/inside: symbolic link to a.txt",
        "ok/unknown: symbolic link",
    ]


def test_symbolic_link_chains_are_refused_however_harmless_each_link_looks():
    """`l1 -> .`, `l2 -> l1/..`: each stays inside when read alone, but l2/x lands one folder above the target."""
    chain = [Member("l1", SYMLINK, "."), Member("l2", SYMLINK, "l1/.."), Member("l2/escaped.txt")]
    assert unsafe_members(chain) == ["l1: symbolic link to .", "l2: symbolic link to l1/.."]


def test_hard_link_targets_are_paths_from_the_archive_root_and_must_be_files_of_it():
    members = [
        Member("x/y"),
        Member("a/b", FOLDER),
        Member("a/b/up", HARDLINK, "../secret.txt"),  # inside if read from a/b/, outside from the root
        Member("a/b/abs", HARDLINK, "/etc/shadow"),
        Member("a/b/nothing", HARDLINK, "a/b/x/y"),  # x/y from a/b/, but no such member from the root
        Member("a/b/folder", HARDLINK, "a/b"),
        Member("a/b/unknown", HARDLINK, ""),
        Member("a/b/ok", HARDLINK, "x/y"),
    ]
    assert unsafe_members(members) == [
        "a/b/up: hard link to ../secret.txt outside the folder",
        "a/b/abs: hard link to /etc/shadow outside the folder",
        "a/b/nothing: hard link to a/b/x/y, not a file of the archive",
        "a/b/folder: hard link to a/b, not a file of the archive",
        "a/b/unknown: hard link to an unknown target, not a file of the archive",
    ]


def test_a_zip_with_dotdot_is_refused_before_anything_is_extracted(tmp_path):
    archive = make_zip(tmp_path / "src" / "splits.zip", {"lists/a.txt": b"a", "../evil": b"x"})
    with pytest.raises(
        InputError,
        match=r"refusing to extract .*splits.zip: 1 of its members could write outside the target folder: "
        r"\.\./evil: '\.\.' in path",
    ):
        extract(archive, tmp_path / "src")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["splits.zip"] and not (tmp_path / "evil").exists()


def test_a_zip_with_a_link_is_refused_saying_why(tmp_path):
    archive = make_zip(tmp_path / "links.zip", {"a.txt": b"a"}, {"sneaky": "a.txt"})
    assert list_members(archive) == [Member("a.txt"), Member("sneaky", SYMLINK, "a.txt")]
    with pytest.raises(
        InputError, match="sneaky: symbolic link to a.txt \\(dataset archives hold no symbolic links, and one lets"
    ):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


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
        match=r"2 of its members could write outside the target folder: \.\./evil.txt: '\.\.' in path; "
        r"/tmp/abs.txt: absolute path",
    ):
        extract(archive, tmp_path / "src")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["evil.rar"]


def hmdb51_archives(tmp_path: Path, templates, source: Path) -> Path:
    """HMDB51's two official archives (a RAR of per-class RARs, and the split lists) in `source`."""
    layout = build_hmdb51(tmp_path / "layout", templates, per_class=3)
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
    return source


@needs_rar_tool
def test_hmdb51_from_its_official_archives_rar_of_per_class_rars_and_again_after_a_delete(tmp_path, templates):
    source = hmdb51_archives(tmp_path, templates, tmp_path / "source")
    pins = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in source.glob("*.rar")}  # not official
    options = PrepareOptions(dataset="hmdb51", source=source, out=tmp_path / "out", workers=2, sha256=pins)
    report = prepare(options)
    assert report.video_root == (source / "hmdb51_org").absolute() and report.lists["train_1.csv"].written == 2 * 51 - 4
    assert sorted(p.name for p in (source / "hmdb51_org").iterdir())[:2] == ["brush_hair", "cartwheel"]
    assert not list((source / "hmdb51_org").glob("*.rar"))
    # the markers must not stop a rerun from extracting again what the user deleted since
    shutil.rmtree(source / "hmdb51_org")
    shutil.rmtree(source / "testTrainMulti_7030_splits")
    assert prepare(options).lists == report.lists
    assert len(list((source / "hmdb51_org").iterdir())) == 51


def test_only_some_archives_present_says_which_is_missing(tmp_path):
    (tmp_path / "UCF101TrainTestSplits-RecognitionTask.zip").write_bytes(b"")
    with pytest.raises(InputError, match="has UCF101TrainTestSplits-RecognitionTask.zip but not UCF101.rar"):
        prepare(PrepareOptions(dataset="ucf101", source=tmp_path, out=tmp_path / "out"))


def test_content_deleted_after_an_extraction_is_extracted_again(tmp_path):
    archive = make_zip(tmp_path / "lists.zip", {"a/x.txt": b"x", "b/y.txt": b"y"})
    assert extract(archive, tmp_path) and extracted(archive, tmp_path)
    shutil.rmtree(tmp_path / "a")
    assert extracted(archive, tmp_path) is False
    assert extract(archive, tmp_path)  # b, which the marker names, is kept, not refused
    assert (tmp_path / "a" / "x.txt").read_text() == "x" and extracted(archive, tmp_path)


def test_a_marker_naming_no_entries_is_stale(tmp_path):
    archive = make_zip(tmp_path / "lists.zip", {"a/x.txt": b"x"})
    (tmp_path / ".lists.zip.extracted").touch()  # as msta wrote it before markers named the entries
    assert extracted(archive, tmp_path) is None
    assert extract(archive, tmp_path) and (tmp_path / "a" / "x.txt").is_file()
    assert (tmp_path / ".lists.zip.extracted").read_text() == "a\n"


def test_an_interrupted_move_is_resumed(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "src" / "v.zip", {f"class{i}/v.avi": b"v" for i in range(3)})
    real_replace = os.replace

    def interrupted(source, target):  # Ctrl-C after the first class folder was moved into place
        if Path(target).name == "class1":
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract(archive, tmp_path / "videos")
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["class0"]
    assert extracted(archive, tmp_path / "videos") is False
    assert extract(archive, tmp_path / "videos")
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["class0", "class1", "class2"]
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == [".v.zip.extracted", "v.zip"]


def test_a_damaged_zip_member_names_the_archive_and_the_member(tmp_path):
    archive = make_zip(tmp_path / "lists.zip", {"lists/a.txt": b"a" * 100, "lists/b.txt": b"b" * 100})
    data = bytearray(archive.read_bytes())
    data[data.index(b"b" * 100) + 50] = ord("c")
    archive.write_bytes(bytes(data))
    with pytest.raises(
        MstaError, match=r"damaged archive .*lists.zip: lists/b.txt cannot be read \(Bad CRC-32.*download it again"
    ):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".lists.zip.extracting").exists()


def test_no_space_left_while_extracting_says_so(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "lists.zip", {"a/x.txt": b"x"})

    def full(source, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(MstaError, match=f"cannot extract .*lists.zip: no space left on the disk holding {tmp_path}"):
        extract(archive, tmp_path / "out")


def fake_extractor(folder: Path, message: str) -> str:
    """A `bsdtar` that fails with `message`, as the real one does on such an archive."""
    folder.mkdir(parents=True)
    script = folder / "bsdtar"
    script.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("said", "advice", "install"),
    [
        ("bsdtar: Write failed: No space left on device", "no space left on the disk", False),
        ("bsdtar: Truncated input file (needed 187 bytes, only 25 available)", "the archive is damaged", False),
        ("bsdtar: Error opening archive: Unrecognized archive format", "install bsdtar", True),
    ],
)
def test_an_extractor_failure_gets_the_advice_that_fits_it(tmp_path, monkeypatch, said, advice, install):
    monkeypatch.setattr(archives, "rar_tool", lambda: ("bsdtar", fake_extractor(tmp_path / "bin", said)))
    with pytest.raises(MstaError) as error:
        list_members(tmp_path / "a.rar")
    assert said in str(error.value) and advice in str(error.value)
    assert ("install bsdtar" in str(error.value)) == install


def test_no_rar_tool_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MstaError, match="no RAR extractor found; install bsdtar .*7-Zip .*unrar"):
        list_members(write_rar(tmp_path / "a.rar", {"a": b""}))


def test_an_unrar_free_on_path_is_named_as_unusable(tmp_path, monkeypatch):
    (tmp_path / "unrar-free").touch()
    (tmp_path / "unrar").symlink_to(tmp_path / "unrar-free")  # as Debian's alternatives link it
    monkeypatch.setattr(shutil, "which", lambda name: str(tmp_path / "unrar") if name == "unrar" else None)
    with pytest.raises(
        MstaError, match=f"no RAR extractor found; the unrar on PATH \\({tmp_path}/unrar\\) is unrar-free, not RARLAB's"
    ):
        list_members(write_rar(tmp_path / "a.rar", {"a": b""}))


@needs_bsdtar
def test_bsdtar_listing_shows_links_and_kinds(tmp_path):
    archive = make_zip(
        tmp_path / "links.zip", {"d/": b"", "d/a.txt": b"a", "d/name with spaces -> x.txt": b"b"}, {"d/ok": "a.txt"}
    )
    listing = subprocess.run(["bsdtar", "-tvf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert _parse_bsdtar(str(archive), listing) == [
        Member("d/", FOLDER),
        Member("d/a.txt"),
        Member("d/name with spaces -> x.txt"),
        Member("d/ok", SYMLINK, "a.txt"),
    ]


def test_7z_listing():
    seven = (
        "Path = d\nFolder = +\nAttributes = D drwxr-xr-x\n\nPath = d/link\nFolder = -\nAttributes =  lrwxrwxrwx\n\n"
        "Path = d/a b.txt\nFolder = -\nAttributes =  -rw-r--r--\n\n"
        "Path = d/hard\nFolder = -\nMode = -rw-r--r--\nSymbolic Link = \nHard Link = d/a b.txt\n\n"
        "Path = d/tarlink\nFolder = -\nMode = lrwxrwxrwx\nSymbolic Link = ../x\nHard Link = \n"
    )
    assert _parse_7z(seven) == [
        Member("d", FOLDER),
        Member("d/link", SYMLINK, ""),
        Member("d/a b.txt"),
        Member("d/hard", HARDLINK, "d/a b.txt"),
        Member("d/tarlink", SYMLINK, "../x"),
    ]


def test_unrar_listing_as_rarlab_unrar_prints_it():
    """Recorded: RARLAB unrar 5.80 (built from its source) on write_rar(..., links=...) of the test below."""
    listing = (FIXTURES / "unrar-5.80-lta-links.txt").read_text()
    assert _parse_unrar(listing) == [
        Member("d/a b.txt"),
        Member("d/sub/c.txt"),
        Member("d/ok", SYMLINK, "a b.txt"),
        Member("d/out", SYMLINK, "../../etc"),
    ]
    hard = "        Name: d/h\n        Type: Hard link\n      Target: d/a b.txt\n\n        Name: d/s\n        Type: Directory\n"
    assert _parse_unrar(hard) == [Member("d/h", HARDLINK, "d/a b.txt"), Member("d/s", FOLDER)]


@pytest.mark.parametrize("name", ["bsdtar", "7z", "7zz", "7za", "unrar"])
def test_each_installed_rar_tool_lists_extracts_and_refuses(tmp_path, monkeypatch, name):
    executable = shutil.which(name)
    if executable is None:
        pytest.skip(f"{name} not installed")
    monkeypatch.setattr(shutil, "which", lambda wanted: executable if wanted == name else None)
    if rar_tool() is None:
        pytest.skip(f"{executable} cannot read RAR (unrar-free, or a 7-Zip without the RAR codec)")
    good = write_rar(tmp_path / "src" / "good.rar", {"d/a b.txt": b"a", "d/sub/c.txt": b"c"})
    folders = {"d", "d/sub"}  # listed as entries by some tools, not by others
    assert [member for member in list_members(good) if member.name not in folders] == [
        Member("d/a b.txt"), Member("d/sub/c.txt")
    ]
    assert extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "sub" / "c.txt").read_text() == "c"
    bad = write_rar(tmp_path / "src" / "bad.rar", {"l2/escaped.txt": b"x"}, {"l1": ".", "l2": "l1/.."})
    with pytest.raises(InputError, match=r"refusing .*bad\.rar.*l1: symbolic link.*l2: symbolic link"):
        extract(bad, tmp_path / "bad-out")
    assert not (tmp_path / "bad-out").exists() and not (tmp_path / "escaped.txt").exists()


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
    """7-Zip lists links without their targets; any link is refused before anything lands."""
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "a b.txt").write_text("a")

    def seven_zip(name: str) -> Path:
        archive = tmp_path / "src" / name
        subprocess.run([SEVEN_ZIP, "a", "-snl", "-bd", str(archive), "d"], cwd=tree, check=True, capture_output=True)
        return archive

    good = seven_zip("good.7z")
    (tree / "d" / "ok").symlink_to("a b.txt")
    bad = seven_zip("bad.7z")
    monkeypatch.setattr(archives, "rar_tool", lambda: ("7z", SEVEN_ZIP))  # 7-Zip's own format stands in for RAR

    assert sorted(list_members(good), key=lambda member: member.name) == [Member("d", FOLDER), Member("d/a b.txt")]
    assert extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "a b.txt").read_text() == "a"
    with pytest.raises(InputError, match=r"refusing to extract .*bad\.7z: 1 of its members .*: d/ok: symbolic link"):
        extract(bad, tmp_path / "bad-out")
    assert not (tmp_path / "bad-out").exists()
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == [".good.7z.extracted", "bad.7z", "good.7z"]


@needs_bsdtar
def test_links_are_refused_after_extraction_when_the_listing_hides_them(tmp_path, monkeypatch):
    archive = write_rar(tmp_path / "src" / "links.rar", {"d/a.txt": b"a"}, {"d/ok": "a.txt"})
    monkeypatch.setattr(archives, "rar_tool", lambda: ("bsdtar", shutil.which("bsdtar")))
    listed = archives.list_members
    monkeypatch.setattr(  # the safety net for a listing that misses a link: check what was extracted
        archives, "list_members", lambda path, label=None: [Member(m.name) for m in listed(path, label)]
    )
    with pytest.raises(InputError, match=r"refusing .*links\.rar: d/ok is a symbolic link \(to a\.txt\), which"):
        extract(archive, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["links.rar"]
    assert not (tmp_path / "out").exists()


def tar_with_hard_link(path: Path, link: str, target: str) -> Path:
    """A tar (which bsdtar reads like a RAR) holding x/y and a hard link `link` to `target`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        data = tarfile.TarInfo("x/y")
        data.size = 2
        archive.addfile(data, io.BytesIO(b"ok"))
        hard = tarfile.TarInfo(link)
        hard.type, hard.linkname = tarfile.LNKTYPE, target
        archive.addfile(hard)
    return path


@needs_bsdtar
def test_hard_links_are_resolved_from_the_archive_root(tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "rar_tool", lambda: ("bsdtar", shutil.which("bsdtar")))
    (tmp_path / "secret.txt").write_text("secret")
    out = tar_with_hard_link(tmp_path / "a" / "out.rar", "a/b/h", "../secret.txt")
    assert list_members(out)[-1] == Member("a/b/h", HARDLINK, "../secret.txt")
    with pytest.raises(InputError, match=r"refusing to extract .*out\.rar: .*a/b/h: hard link to \.\./secret\.txt outside"):
        extract(out, tmp_path / "a" / "dest")
    inside = tar_with_hard_link(tmp_path / "b" / "in.rar", "a/b/h", "x/y")
    assert extract(inside, tmp_path / "b" / "dest")
    assert (tmp_path / "b" / "dest" / "a" / "b" / "h").read_text() == "ok"


@needs_bsdtar
def test_an_unsafe_member_of_an_inner_archive_is_named_inside_the_outer_one(tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "rar_tool", lambda: ("bsdtar", shutil.which("bsdtar")))
    inner = write_rar(tmp_path / "inner" / "brush_hair.rar", {"../../evil.txt": b"x"}).read_bytes()
    outer = write_rar(tmp_path / "src" / "hmdb51_org.rar", {"brush_hair.rar": inner})
    with pytest.raises(InputError) as error:
        extract(outer, tmp_path / "src" / "hmdb51_org", nested=True)
    assert f"refusing to extract brush_hair.rar inside {outer}: 1 of its members" in str(error.value)
    assert ".extracting" not in str(error.value)
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["hmdb51_org.rar"]
