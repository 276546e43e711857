import subprocess
import sys

import pytest

from msta_cli.cli import refuse_empty_arguments


def test_an_empty_argument_is_refused_with_its_position(capsys):
    with pytest.raises(SystemExit) as stop:
        refuse_empty_arguments(["prepare", "synthetic", ""])
    assert stop.value.code == 2
    assert "argument 3 of msta is empty" in " ".join(capsys.readouterr().err.split())


def test_the_msta_entry_point_writes_nothing_for_an_empty_output(tmp_path):
    result = subprocess.run([sys.executable, "-m", "msta_cli", "prepare", "synthetic", ""], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_empty_option_value_after_an_equals_sign_is_refused(capsys):
    with pytest.raises(SystemExit):
        refuse_empty_arguments(["export", "run", "--format", "adapter", "--out="])
    assert "argument 5 of msta is empty" in " ".join(capsys.readouterr().err.split())


def test_arguments_with_values_pass():
    refuse_empty_arguments(["predict", "clip.mp4", "--labels", "labels.txt", "--set", "key=", "--set=a=", "--out=x"])
