"""Where a prepared dataset's videos are: dataset.yaml's video_root, checked before any run."""

from __future__ import annotations

import pytest

from msta_cli.core.errors import InputError
from msta_cli.core.config import Config, EvalSet
from msta_cli.core.evaluation.evaluator import Views, set_views, video_root
from msta_cli.core.files import write_bytes_atomic
from msta_cli.core.prepare.writer import MANIFEST, labels_csv, manifest_yaml, write_outputs


def prepared(tmp_path, text: str | bytes):
    folder = tmp_path / "prepared"
    folder.mkdir()
    (folder / "dataset.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


def test_an_absolute_video_root_is_used_as_recorded(tmp_path):
    (tmp_path / "videos").mkdir()
    assert video_root(prepared(tmp_path, f"name: colours\nvideo_root: {tmp_path / 'videos'}\n")) == tmp_path / "videos"


def test_a_relative_video_root_is_taken_from_the_prepared_folder(tmp_path):
    folder = prepared(tmp_path, "name: colours\nvideo_root: ../videos\n")
    (tmp_path / "videos").mkdir()
    assert video_root(folder).resolve() == (tmp_path / "videos").resolve()


def test_without_dataset_yaml_the_videos_are_in_the_folder_itself(tmp_path):
    """A data root of one's own: lists next to the videos, as the recipes name them, no manifest."""
    (tmp_path / "labels.csv").write_text("id,name\n0,red\n")
    (tmp_path / "train.csv").write_text("path,label\nred/a.mp4,0\n")
    (tmp_path / "red").mkdir()
    (tmp_path / "red" / "a.mp4").write_bytes(b"")
    assert video_root(tmp_path) == tmp_path


def test_a_folder_an_interrupted_msta_prepare_left_is_refused_saying_to_run_it_again(tmp_path, monkeypatch):
    """Its lists name videos under SOURCE: taken as the video root, it would fail every one."""
    folder = tmp_path / "prepared"

    def interrupted_before_the_manifest(path, data):
        if path.name == MANIFEST:
            raise KeyboardInterrupt
        write_bytes_atomic(path, data)

    monkeypatch.setattr("msta_cli.core.prepare.writer.write_bytes_atomic", interrupted_before_the_manifest)
    files = {"labels.csv": labels_csv(["red"]), "train_1.csv": b"path,label\nred/a.mp4,0\n"}
    with pytest.raises(KeyboardInterrupt):
        write_outputs(folder, {**files, MANIFEST: manifest_yaml({"video_root": str(tmp_path / "source")})})
    assert (folder / "train_1.csv").is_file() and not (folder / MANIFEST).exists()
    with pytest.raises(
        InputError,
        match=f"{folder}: msta prepare has not finished writing this folder \\(it writes dataset.yaml last\\); "
        "run msta prepare again",
    ):
        video_root(folder)


def test_a_video_root_that_is_not_a_folder_is_refused_saying_how_to_fix_it(tmp_path):
    folder = prepared(tmp_path, "name: colours\nvideo_root: /data/moved/elsewhere\n")
    with pytest.raises(
        InputError,
        match=f"{folder / 'dataset.yaml'}: video_root /data/moved/elsewhere is not a folder; if the videos moved, set "
        f"video_root there to where they are now \\(absolute, or relative to {folder}\\), or run msta prepare again",
    ):
        video_root(folder)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [colours\n", r"dataset.yaml:1:7: invalid YAML: not closed by the end of the file"),
        ("- colours\n", "dataset.yaml: expected a mapping of keys to values"),
        ("name: caf\xe9\n".encode("latin-1"), "dataset.yaml: not UTF-8 text"),
    ],
)
def test_a_damaged_dataset_yaml_is_named_with_its_problem(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        video_root(prepared(tmp_path, text))


@pytest.mark.parametrize(
    ("name", "views"),
    [("hmdb51", Views(10, 3)), ("ucf101", Views(5, 3)), ("kinetics400", Views(4, 3)), ("kinetics600", Views(4, 3)),
     ("ssv2", Views(2, 3)), ("folder", Views(10, 3))],
)
def test_auto_views_are_the_benchmarks_own_by_the_prepared_datasets_name(tmp_path, name, views):
    config = Config()
    config.data.root = str(prepared(tmp_path, f"name: {name}\n"))
    assert config.eval.views == "auto"
    assert set_views(config, config.eval.sets[0]) == views


def test_a_sets_own_root_and_views_decide_over_the_recipes(tmp_path):
    config = Config()
    config.data.root = str(prepared(tmp_path, "name: hmdb51\n"))
    (tmp_path / "k600").mkdir()
    (tmp_path / "k600" / "dataset.yaml").write_text("name: kinetics600\n")
    assert set_views(config, EvalSet(name="k600", root=str(tmp_path / "k600"))) == Views(4, 3)
    assert set_views(config, EvalSet(name="k600", root=str(tmp_path / "k600"), views="1x1")) == Views(1, 1)
    config.eval.views = "2x1"
    assert set_views(config, EvalSet(name="test")) == Views(2, 1)


def test_auto_views_without_a_dataset_yaml_fall_back_to_10x3(tmp_path):
    config = Config()
    config.data.root = str(tmp_path)
    assert set_views(config, config.eval.sets[0]) == Views(10, 3)


@pytest.mark.parametrize("text", ["0x1", "3x2", "x3", "3"])
def test_views_that_do_not_parse_say_the_whole_rule(text):
    with pytest.raises(InputError, match=rf"views '{text}': expected CLIPSxCROPS with clips at least 1 and crops 1 or 3"):
        Views.parse(text)
