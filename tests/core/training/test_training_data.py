"""The training lists, and best-on-val's videos: held out of them, or drawn from another list."""

import pandas as pd
import pytest

from msta_cli.core.config import Config
from msta_cli.core.errors import InputError
from msta_cli.core.training.training_data import draw_validation, hold_out, load_training_data


def test_hold_out_is_per_class_seeded_and_disjoint():
    split = pd.DataFrame({"path": [f"v{i}" for i in range(20)], "label": [i % 4 for i in range(20)]})
    train, validation = hold_out(split, 0.2, seed=3)
    assert sorted(validation["label"].tolist()) == [0, 1, 2, 3]
    assert not set(train["path"]) & set(validation["path"]) and len(train) + len(validation) == 20
    assert validation.equals(hold_out(split, 0.2, seed=3)[1])


def test_a_repeated_training_video_is_held_out_whole_and_once():
    paths = [f"v{i}" for i in range(8)]
    split = pd.DataFrame({"path": paths + paths[:4] * 2, "label": [0] * 16})  # v0..v3 weighted 3x
    train, validation = hold_out(split, 0.5, seed=0)
    assert validation["path"].is_unique and len(validation) == 4
    assert not set(train["path"]) & set(validation["path"])
    assert len(train) + sum((split["path"] == path).sum() for path in validation["path"]) == 16


def _labels(path, names):
    path.write_text("id,name\n" + "".join(f"{i},{name}\n" for i, name in enumerate(names)))
    return path


def test_validation_from_another_list_keeps_every_shot_and_only_training_classes(tmp_path):
    # the full list indexes 3 classes; the run trains on 2 of them, whose ids differ from the full list's
    full_names = ["brush hair", "cartwheel", "catch"]
    pool = pd.DataFrame({"path": [f"{name}/{i}.avi" for name in full_names for i in range(10)],
                         "label": [label for label in range(3) for _ in range(10)]})
    pool.to_csv(tmp_path / "train_1.csv", index=False)
    _labels(tmp_path / "labels.csv", full_names)
    class_names = ["catch", "brush hair"]
    train = pd.DataFrame({"path": ["catch/0.avi", "catch/1.avi", "brush hair/0.avi", "brush hair/1.avi"], "label": [0, 0, 1, 1]})
    validation = draw_validation(train, class_names, tmp_path / "train_1.csv", tmp_path / "labels.csv", 0.25, seed=1)
    assert sorted(validation["label"].tolist()) == [0, 0, 1, 1]  # round(0.25 * 8 other videos) per class
    assert all(path.startswith(class_names[label]) for path, label in zip(validation["path"], validation["label"]))
    assert not set(validation["path"]) & set(train["path"])
    assert validation.equals(draw_validation(train, class_names, tmp_path / "train_1.csv", tmp_path / "labels.csv", 0.25, seed=1))


def test_a_list_without_other_videos_of_a_training_class_is_an_input_error(tmp_path):
    pd.DataFrame({"path": ["a/0.avi", "b/0.avi"], "label": [0, 1]}).to_csv(tmp_path / "train_1.csv", index=False)
    _labels(tmp_path / "labels.csv", ["a", "b"])
    train = pd.DataFrame({"path": ["a/0.avi"], "label": [0]})
    with pytest.raises(InputError, match=r"no video outside the training list for 1 of the 2 training classes \(a; "):
        draw_validation(train, ["a", "b"], tmp_path / "train_1.csv", tmp_path / "labels.csv", 0.1, seed=0)


@pytest.mark.parametrize("kind", ["fewshot", "base2novel"])
def test_best_on_val_of_a_k_shot_protocol_needs_a_list_to_validate_on(tmp_path, colour_dataset, kind):
    config = Config()
    config.data.root, config.data.train_split, config.data.train_labels = str(colour_dataset), "train.csv", "labels.csv"
    config.eval.model_selection, config.protocol.kind = "best-on-val", kind
    with pytest.raises(InputError, match="trains on exactly K videos per class.*set eval.val_split"):
        load_training_data(config)
    config.eval.val_split = "test.csv"  # any list of the same classes
    data = load_training_data(config)
    assert len(data.train) == len(pd.read_csv(colour_dataset / "train.csv"))  # every shot still trains
    assert not set(data.validation["path"]) & set(data.train["path"]) and len(data.validation) == 3


def test_a_data_root_not_prepared_yet_says_how_to_prepare_it(tmp_path):
    config = Config()
    config.data.root = str(tmp_path / "synthetic")
    with pytest.raises(InputError, match=rf"data.root {tmp_path / 'synthetic'}: folder not found; write it with `msta prepare DATASET SOURCE"):
        load_training_data(config)


def test_a_video_listed_under_two_classes_is_noted_not_refused(tmp_path, colour_dataset):
    rows = pd.read_csv(colour_dataset / "train.csv")
    conflicting = pd.concat([rows, rows.iloc[[0, 1]].assign(label=2)])  # two videos of class 0 again, as class 2
    conflicting.to_csv(tmp_path / "train.csv", index=False)
    config = Config()
    config.data.root, config.data.train_split, config.data.train_labels = str(colour_dataset), str(tmp_path / "train.csv"), "labels.csv"
    data = load_training_data(config)
    assert len(data.train) == len(rows) + 2  # each row trains as listed
    assert data.notes == [f"{tmp_path / 'train.csv'}: 2 video(s) listed under more than one class "
                          f"({', '.join(sorted(rows['path'].iloc[[0, 1]]))}); each row trains as listed"]
    config.data.train_split = "train.csv"
    assert load_training_data(config).notes == []  # a plain list, or one repeating a video under its own class
