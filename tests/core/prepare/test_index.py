"""Finding listed videos in copies that differ in folders, letter case and containers; what cannot be walked."""

from __future__ import annotations

import errno
import os

from msta_cli.core.prepare.index import VideoIndex
from tests.core.prepare.layouts import placeholder


def test_matches_exactly_by_case_by_folder_and_by_suffix_and_counts_each_kind(tmp_path):
    for name in (
        "a/Exact.avi",
        "B/v_HandStandPushups.avi",
        "c/moved.mp4",
        "d/other.mkv",
        "e/twice.mp4",
        "f/twice.mp4",
        ".hidden/gone.mp4",
    ):
        placeholder(tmp_path / name)
    (tmp_path / "a" / "notes.txt").write_text("")
    index = VideoIndex(tmp_path)
    assert len(index) == 6
    assert index.find("a/Exact.avi") == "a/Exact.avi"
    assert index.find("Exact.avi") == "a/Exact.avi"
    assert index.find("b/v_handstandpushups.avi") == "B/v_HandStandPushups.avi"
    assert index.find("x/moved.mp4") == "c/moved.mp4"
    assert index.find("other.mp4") == "d/other.mkv"
    assert index.find("twice.mp4") == "e/twice.mp4"
    assert index.find("gone.mp4") is None and index.find("notes.txt") is None
    assert index.matches.notes("") == [
        "1 videos matched with different letter case, e.g. b/v_handstandpushups.avi -> B/v_HandStandPushups.avi",
        "1 videos found in another folder than the annotation names, e.g. x/moved.mp4 -> c/moved.mp4",
        "1 videos found with another video extension, e.g. other.mp4 -> d/other.mkv",
        "1 videos found more than once; took the first in sorted order, e.g. twice.mp4 -> e/twice.mp4",
    ]


def test_follows_symlinked_folders(tmp_path):
    placeholder(tmp_path / "store" / "clip.mp4")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "videos").symlink_to(tmp_path / "store")
    (tmp_path / "root" / "loop").symlink_to(tmp_path / "root")
    assert VideoIndex(tmp_path / "root").find("clip.mp4") == "videos/clip.mp4"


def test_broken_links_are_reported_not_dropped(tmp_path):
    placeholder(tmp_path / "dogs" / "dog.mp4")
    (tmp_path / "cats").symlink_to("/mnt/unmounted/cats")
    (tmp_path / "dogs" / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    index = VideoIndex(tmp_path)
    assert len(index) == 1 and index.unreachable_notes == [
        "2 entries below SOURCE could not be read and were skipped, with any videos in them: "
        f"cats (broken link to /mnt/unmounted/cats), dogs/gone.mp4 (broken link to {tmp_path / 'nowhere.mp4'}); "
        "mount, fix or remove them"
    ]


def test_macos_copy_artefacts_are_not_videos(tmp_path):
    placeholder(tmp_path / "a" / "clip.mp4")
    placeholder(tmp_path / "a" / "._clip.mp4")
    placeholder(tmp_path / "__MACOSX" / "a" / "._clip.mp4")
    placeholder(tmp_path / "__MACOSX" / "a" / "other.mp4")
    index = VideoIndex(tmp_path)
    assert len(index) == 1 and index.find("a/clip.mp4") == "a/clip.mp4" and not index.matches.counts
    assert index.unreachable_notes == []


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    placeholder(tmp_path / "dogs" / "dog.mp4")
    placeholder(tmp_path / "private" / "cat.mp4")
    scandir = os.scandir

    def denied(path):  # chmod 000 does not stop root, who may run the tests
        if os.path.basename(path) == "private":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    index = VideoIndex(tmp_path)
    assert len(index) == 1 and index.unreachable_notes == [
        "1 entries below SOURCE could not be read and were skipped, with any videos in them: "
        "private/ (cannot list: Permission denied); mount, fix or remove them"
    ]
