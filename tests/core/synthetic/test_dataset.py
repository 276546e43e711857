from pathlib import Path

import numpy as np
import pytest
import yaml

from msta_cli.core.config import load_config
from msta_cli.core.data.decoding import open_video
from msta_cli.core.data.lists import read_labels, read_split
from msta_cli.core.descriptions import descriptions_for, load_descriptions
from msta_cli.core.errors import InputError
from msta_cli.core.prepare.check import check_videos
from msta_cli.core.prepare.progress import no_progress
from msta_cli.core.synthetic.dataset import WORLD_VERSION, SyntheticOptions, encode_mp4, video_seed, write_synthetic
from msta_cli.core.synthetic.world import ActionClass, base_classes, classes, novel_classes, render_clip
from msta_cli.core.training.training_data import load_training_data

QUICKSTART = Path(__file__).resolve().parents[3] / "recipes" / "quickstart.yaml"
OPTIONS = SyntheticOptions(train_per_class=2, test_per_class=1, workers=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic(out, OPTIONS)
    return out


def test_layout_reads_and_checks_like_a_prepared_dataset(world):
    manifest = yaml.safe_load((world / "dataset.yaml").read_text())
    assert manifest["check"] == {"checked": 108, "ok": 108, "problems": 0, "missing": 0, "unreadable": 0}
    assert all((world / name).is_file() for name in manifest["files"])
    root = Path(manifest["video_root"])
    videos = read_split(world / "test.csv", len(read_labels(world / "labels.csv")))["path"].tolist()
    assert check_videos(root, videos, 1, no_progress) == {}
    config = load_config(QUICKSTART, [f"data.root={world}", f"loss.descriptions.file={world / 'descriptions.json'}", "data.train_split=base2novel/train_s1.csv"])
    data = load_training_data(config)
    spatial, temporal = descriptions_for(load_descriptions(config.loss.descriptions), data.class_names)
    assert len(data.train) == 2 * len(base_classes()) and len(spatial) == len(temporal) == len(base_classes())


@pytest.mark.parametrize("recorded", [None, 1])
def test_a_world_rendered_by_another_msta_is_refused_before_training(world, tmp_path, recorded):
    old = tmp_path / "old"
    old.mkdir()
    for name in ("labels.csv", "base2novel"):
        (old / name).symlink_to(world / name)
    manifest = yaml.safe_load((world / "dataset.yaml").read_text())
    assert manifest["world_version"] == WORLD_VERSION
    manifest.pop("world_version")
    if recorded is not None:
        manifest["world_version"] = recorded
    (old / "dataset.yaml").write_text(yaml.safe_dump(manifest))
    config = load_config(QUICKSTART, [f"data.root={old}", "data.train_split=base2novel/train_s1.csv"])
    command = f"msta prepare synthetic {old} --train-per-class 2 --test-per-class 1"
    with pytest.raises(InputError, match=r"rendered by another msta .*run `(.*)` again") as refusal:
        load_training_data(config)
    assert f"run `{command}` again" in str(refusal.value)


def test_shared_protocol_code_reproduces_the_worlds_base_novel_split(world):
    assert read_labels(world / "base2novel/base_labels.csv") == [a.name for a in base_classes()]
    assert read_labels(world / "base2novel/novel_labels.csv") == [a.name for a in novel_classes()]
    novel_test = read_split(world / "base2novel/novel_test.csv", len(novel_classes()))
    assert sorted(novel_test["label"]) == list(range(len(novel_classes())))


def test_decoded_videos_are_the_rendered_frames_in_order(world):
    action = ActionClass("triangle", "rotating clockwise")
    expected = render_clip(action, video_seed(OPTIONS, action, "train", 1))
    with open_video(Path(yaml.safe_load((world / "dataset.yaml").read_text())["video_root"]) / "triangle_rotating_clockwise/train_001.mp4") as video:
        decoded = video.get_batch(range(video.num_frames)).numpy().astype(np.int16)
    assert decoded.shape == expected.shape
    errors = np.abs(decoded - expected).mean(axis=(1, 2, 3))
    assert errors.max() < 4 and all(errors[t] < np.abs(decoded[t] - expected[t + 1]).mean() for t in range(len(expected) - 1))


@pytest.mark.parametrize("split", ["train", "test"])
def test_each_video_of_a_pairs_second_class_is_the_first_class_video_reversed(split):
    for action in classes():
        partner = action.partner()
        if partner is None:
            assert video_seed(OPTIONS, action, split, 0) not in [video_seed(OPTIONS, other, split, 0) for other in classes() if other != action]
            continue
        for index in range(2):
            mine = render_clip(action, video_seed(OPTIONS, action, split, index))
            theirs = render_clip(partner, video_seed(OPTIONS, partner, split, index))
            assert np.array_equal(mine, theirs[::-1]), (action.name, index)
    first, other = ActionClass("star", "moving left"), ActionClass("cross", "moving left")
    assert not np.array_equal(render_clip(first, video_seed(OPTIONS, first, split, 0)), render_clip(first, video_seed(OPTIONS, first, split, 1)))
    assert video_seed(OPTIONS, first, split, 0) != video_seed(OPTIONS, other, split, 0)


def test_rerun_with_the_same_options_writes_identical_files(world, tmp_path):
    write_synthetic(tmp_path, OPTIONS)
    for name in ("labels.csv", "train.csv", "base2novel/train_s1.csv", "fewshot/train_k2.csv", "descriptions.json"):
        assert (tmp_path / name).read_bytes() == (world / name).read_bytes(), name
    videos = sorted(path.relative_to(world) for path in world.rglob("*.mp4"))
    assert len(videos) == 108
    assert [(tmp_path / video).read_bytes() == (world / video).read_bytes() for video in videos] == [True] * 108
    assert len(read_labels(tmp_path / "labels.csv")) == len(classes())


def test_encoding_the_same_frames_always_writes_the_same_bytes(tmp_path):
    """With x264's macroblock-tree rate control this clip came out as 2-4 different files in 40 encodes."""
    action = next(action for action in classes() if action.name == "cross shrinking")
    frames = render_clip(action, video_seed(OPTIONS, action, "train", 15))
    for index in range(40):
        encode_mp4(tmp_path / f"{index}.mp4", frames)
    assert len({(tmp_path / f"{index}.mp4").read_bytes() for index in range(40)}) == 1
