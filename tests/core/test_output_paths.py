from pathlib import Path

import pytest

from msta_cli.core.errors import InputError
from msta_cli.core.output_paths import check_output


def test_missing_folders_are_accepted_and_not_created(tmp_path):
    check_output(tmp_path / "a" / "b" / "out.csv", "--output")
    check_output(tmp_path / "c" / "d", "--out", folder=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "folder", "message"), [("f", True, "f: is a file"), ("f/x.csv", False, "f is a file"), ("d", False, "is a folder")])
def test_paths_that_cannot_be_written_are_refused(tmp_path, name, folder, message):
    (tmp_path / "f").write_text("")
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match=message):
        check_output(tmp_path / name, "--out", folder=folder)


def test_a_folder_that_takes_no_files_is_refused():
    with pytest.raises(InputError, match="cannot write in /proc"):
        check_output(Path("/proc/x.safetensors"), "--out")
