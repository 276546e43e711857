"""Label and split lists: good files parse, bad rows raise InputError naming file and line."""

import pytest

from msta_cli.core.data.lists import read_labels, read_split
from msta_cli.core.errors import InputError


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_names_file(path, read, message: str) -> None:
    """`read(path)` raises an InputError that starts with the path and contains `message`."""
    with pytest.raises(InputError) as raised:
        read(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_read_labels(tmp_path):
    path = write(tmp_path, "labels.csv", "id,name\n0,brush hair\n1,cartwheel\n2,catch\n")
    assert read_labels(path) == ["brush hair", "cartwheel", "catch"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,name\n0,a\n2,b\n", "line 3: id '2', expected 1"),
        ("id,name\n1,a\n", "line 2: id '1', expected 0"),
        ("id,name\n0,a\nx,b\n", "line 3: id 'x'"),
        ("id,name\n0,a\n1,\n", "line 3: empty class name"),
        ("id,name\n0,a\n1,a\n", "lines 2 and 3: class name 'a' appears twice"),
        ("id,label\n0,a\n", "missing column(s) name"),
        ("id,name\n", "no rows"),
        ("", "not a readable CSV"),
    ],
)
def test_bad_labels_name_the_file_and_row(tmp_path, text, message):
    assert_names_file(write(tmp_path, "labels.csv", text), read_labels, message)


def test_read_split(tmp_path):
    path = write(tmp_path, "train.csv", "path,label\na/v1.avi,0\n\nb/v 2.avi,2\n")
    split = read_split(path, 3)
    assert split["path"].tolist() == ["a/v1.avi", "b/v 2.avi"]
    assert split["label"].tolist() == [0, 2]
    assert split["label"].dtype == "int64"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,label\na.mp4,0\n\nb.mp4,3\n", "line 4: label '3' is not a class id in 0..2"),
        ("path,label\na.mp4,-1\n", "line 2: label '-1'"),
        ("path,label\na.mp4,one\n", "line 2: label 'one'"),
        ("path,label\na.mp4,\n", "line 2: label ''"),
        ("path,label\na.mp4,\u00b2\n", "line 2: label '\u00b2'"),  # isdigit, but int() refuses it
        ("path,label\na.mp4,\u0661\n", "line 2: label '\u0661'"),  # an Arabic-Indic one
        ("path,label\na.mp4,0,\nb.mp4,1,\n", "line 2: 3 fields where the header has 2 (a trailing comma"),
        ("path,label\na,b.mp4,0\nc,d.mp4,1\n", "line 2: 3 fields where the header has 2"),
        ("path;label\na.mp4;0\n", "missing column(s) path, label; the header must be path,label (found 'path;label')"),
        ("a.mp4 0\nb.mp4 1\n", "(found 'a.mp4 0'); this looks like a space-separated list such as ViFi-CLIP's"),
        ("path,label\n,1\n", "line 2: empty video path"),
        ("path,label\n", "no rows"),
        ("video,label\na.mp4,0\n", "missing column(s) path"),
    ],
)
def test_bad_splits_name_the_file_line_and_value(tmp_path, text, message):
    assert_names_file(write(tmp_path, "test.csv", text), lambda path: read_split(path, 3), message)


def test_a_test_set_lists_each_video_once_while_a_training_list_may_repeat_one(tmp_path):
    path = write(tmp_path, "test.csv", "path,label\na.mp4,0\nb.mp4,1\na.mp4,0\ngone.mp4,2\ngone.mp4,1\n")
    assert read_split(path, 3)["path"].tolist() == ["a.mp4", "b.mp4", "a.mp4", "gone.mp4", "gone.mp4"]
    message = "lines 2, 4: video 'a.mp4' is listed 2 times; a test set lists each video once (2 videos are repeated)"
    assert_names_file(path, lambda path: read_split(path, 3, each_video_once=True), message)


def test_spaces_around_header_names_and_paths_are_a_spreadsheet_s_not_the_file_s(tmp_path):
    path = write(tmp_path, "test.csv", "path , label\n a.mp4 ,0\nb.mp4,1\na.mp4 ,2\n")
    assert read_split(path, 3)["path"].tolist() == ["a.mp4", "b.mp4", "a.mp4"]
    assert_names_file(path, lambda path: read_split(path, 3, each_video_once=True), "lines 2, 4: video 'a.mp4'")


@pytest.mark.parametrize("read", [read_labels, lambda path: read_split(path, 3)])
def test_missing_file(tmp_path, read):
    assert_names_file(tmp_path / "nope.csv", read, "file not found")
