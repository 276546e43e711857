from pathlib import Path

from msta_cli.core.inference.inputs import expand_inputs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_files_folders_and_globs_in_argument_order_without_repeats(tmp_path):
    a = _touch(tmp_path / "a.mp4")
    nested = _touch(tmp_path / "folder" / "deep" / "b.MKV")
    _touch(tmp_path / "folder" / "notes.txt")
    c = _touch(tmp_path / "folder" / "c.avi")
    glob_hit = _touch(tmp_path / "other" / "d.webm")
    assert expand_inputs([str(a), str(tmp_path / "folder"), str(tmp_path / "other" / "*.webm"), str(a)]) == [a, c, nested, glob_hit]


def test_an_explicit_file_is_kept_whatever_its_suffix(tmp_path):
    notes = _touch(tmp_path / "notes.txt")
    assert expand_inputs([str(notes)]) == [notes]


def test_arguments_that_name_nothing_become_failures_with_reasons_in_argument_order(tmp_path):
    (tmp_path / "empty").mkdir()
    video = _touch(tmp_path / "a.mp4")
    specs = [str(tmp_path / "missing.mp4"), str(video), str(tmp_path / "empty"), str(tmp_path / "*.mov")]
    expanded = expand_inputs(specs)
    assert expanded[1] == video
    assert [(f.path, f.reason.split(" (")[0]) for f in expanded[:1] + expanded[2:]] == [
        (str(tmp_path / "missing.mp4"), "file not found"),
        (str(tmp_path / "empty"), "folder holds no video files"),
        (str(tmp_path / "*.mov"), "pattern matches no video files"),
    ]


def test_a_folder_of_mpeg_transport_streams_is_expanded(tmp_path):
    videos = [_touch(tmp_path / name) for name in ("a.ts", "b.MTS", "c.m2ts")]
    assert expand_inputs([str(tmp_path)]) == videos


def test_a_folder_copied_from_a_mac_is_expanded_without_its_artefacts(tmp_path):
    video = _touch(tmp_path / "clips" / "a.mp4")
    _touch(tmp_path / "clips" / "._a.mp4")
    _touch(tmp_path / "__MACOSX" / "clips" / "._a.mp4")
    assert expand_inputs([str(tmp_path)]) == [video]


def test_a_glob_takes_the_video_files_a_folder_would(tmp_path):
    video = _touch(tmp_path / "mixed" / "a.mp4")
    _touch(tmp_path / "mixed" / "notes.txt")
    _touch(tmp_path / "mixed" / "thumb.jpg")
    _touch(tmp_path / "mixed" / "__MACOSX" / "a.mp4")
    _touch(tmp_path / "mixed" / "._a.mp4")
    assert expand_inputs([str(tmp_path / "mixed" / "*")]) == [video]
    assert expand_inputs([str(tmp_path / "mixed")]) == [video]


def test_one_file_spelt_several_ways_is_predicted_once_under_its_first_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _touch(tmp_path / "v" / "a.mp4")
    spellings = ["v/a.mp4", "./v/a.mp4", str(tmp_path / "v" / "a.mp4"), "v/../v/a.mp4", "v"]
    assert expand_inputs(spellings) == [Path("v/a.mp4")]


def test_two_names_linked_to_one_file_stay_two_videos(tmp_path):
    """A symlink farm (git-annex, deduplicated copies) names each video by its link."""
    blob = _touch(tmp_path / ".blob")
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).symlink_to(blob)
    assert expand_inputs([str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]) == [tmp_path / "a.mp4", tmp_path / "b.mp4"]
