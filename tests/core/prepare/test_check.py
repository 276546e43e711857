"""The video check: every kind of damage gives a reason; good videos pass, whatever the worker count."""

from __future__ import annotations

import shutil

from msta_cli.core.prepare.check import check_video, check_videos
from tests.helpers.videos import damage_avi, truncate, write_not_a_video, write_zero_byte


def test_each_kind_of_damage_has_a_reason(tmp_path, templates):
    good = shutil.copyfile(templates[".mp4"], tmp_path / "good.mp4")
    cut = truncate(shutil.copyfile(templates[".mp4"], tmp_path / "cut.mp4"), 0.4)
    damaged = damage_avi(shutil.copyfile(templates[".avi"], tmp_path / "damaged.avi"))
    assert check_video(good) is None
    assert check_video(write_zero_byte(tmp_path / "empty.mp4")) == "empty file (0 bytes)"
    assert check_video(tmp_path / "absent.mp4") == "file not found"
    assert check_video(damaged).startswith("damaged")
    assert check_video(cut) is not None
    text = check_video(write_not_a_video(tmp_path / "text.avi"))
    assert text.startswith("unreadable container") and str(tmp_path) not in text


def test_parallel_check_reports_only_failures_and_progress(tmp_path, templates):
    paths = [f"v{i}.mp4" for i in range(5)]
    for path in paths:
        shutil.copyfile(templates[".mp4"], tmp_path / path)
    write_zero_byte(tmp_path / "v3.mp4")
    seen = []
    for workers in (1, 2):
        assert check_videos(tmp_path, paths, workers, lambda *event: seen.append(event)) == {
            "v3.mp4": "empty file (0 bytes)"
        }
    assert seen[-1] == ("check videos", 5, 5)
