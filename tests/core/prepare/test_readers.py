"""Each official layout's annotations: labels, ids and split sizes, and errors that say what was expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import LayoutNotFound, Row
from msta_cli.core.prepare.folder import read_folder
from msta_cli.core.prepare.hmdb51 import read_hmdb51
from msta_cli.core.prepare.kinetics import read_kinetics
from msta_cli.core.prepare.options import PrepareOptions
from msta_cli.core.prepare.ssv2 import read_ssv2
from msta_cli.core.prepare.ucf101 import read_ucf101
from tests.core.prepare.layouts import build_folder, build_hmdb51, build_kinetics, build_ssv2, build_ucf101, placeholder


def options(dataset: str, source: Path, **changes) -> PrepareOptions:
    return PrepareOptions(dataset=dataset, source=source, out=source / "out", **changes)


def test_hmdb51_ids_names_and_split_sizes(tmp_path, templates):
    source = build_hmdb51(tmp_path / "hmdb", templates)
    annotations = read_hmdb51(source, options("hmdb51", source))
    assert len(annotations.labels) == 51
    assert annotations.labels[:3] == ["brush hair", "cartwheel", "catch"]
    assert annotations.labels[20:22] == ["kick ball", "kick"]  # the benchmark's order, not sorted()
    assert annotations.labels[44:46] == ["sword exercise", "sword"]
    assert {split: len(rows) for split, rows in annotations.splits.items()} == {
        "train_1": 153,
        "test_1": 51,
        "train_2": 153,
        "test_2": 51,
        "train_3": 153,
        "test_3": 51,
    }
    assert annotations.splits["test_1"][0] == Row("brush_hair/Clip_0_brush_hair_f_cm_np1_le_goo_0.avi", 0)
    assert not any("_99_" in row.path for rows in annotations.splits.values() for row in rows)  # id 0 = unused


def test_hmdb51_bad_split_id_names_file_and_line(tmp_path, templates):
    source = build_hmdb51(tmp_path / "hmdb", templates)
    split = source / "testTrainMulti_7030_splits" / "wave_test_split2.txt"
    split.write_text(split.read_text() + "extra.avi 7\n")
    with pytest.raises(
        InputError,
        match=r"wave_test_split2.txt:6: the split id must be 0 \(unused\), 1 \(train\) or 2 \(test\), found '7'",
    ):
        read_hmdb51(source, options("hmdb51", source))


def test_ucf101_classind_order_and_the_handstand_quirk(tmp_path, templates):
    source = build_ucf101(tmp_path / "ucf", templates)
    annotations = read_ucf101(source, options("ucf101", source))
    assert annotations.labels == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    assert len(annotations.splits["train_1"]) == 12 and len(annotations.splits["test_1"]) == 6
    assert Row("HandstandPushups/v_HandStandPushups_g01_c01.avi", 1) in annotations.splits["test_1"]
    assert Row("HandstandPushups/v_HandStandPushups_g02_c01.avi", 1) in annotations.splits["train_1"]


def test_ucf101_label_out_of_range(tmp_path, templates):
    source = build_ucf101(tmp_path / "ucf", templates)
    (source / "ucfTrainTestlist" / "trainlist02.txt").write_text("YoYo/v_YoYo_g01_c01.avi 4\n")
    with pytest.raises(InputError, match=r"trainlist02.txt:1: label 4 is outside 1..3"):
        read_ucf101(source, options("ucf101", source))


def test_kinetics_labels_are_sorted_names_and_videos_named_by_id_and_times(tmp_path, templates):
    source = build_kinetics(tmp_path / "k400", templates)
    annotations = read_kinetics(source, options("kinetics400", source))
    assert annotations.labels == ["abseiling", "massaging person's head", "passing American football (in game)"]
    assert len(annotations.splits["train"]) == 13 and len(annotations.splits["val"]) == 7
    assert Row("absent_train_000000_000010.mp4", 0) in annotations.splits["train"]


def test_kinetics_needs_a_validation_csv(tmp_path, templates):
    source = build_kinetics(tmp_path / "k400", templates)
    (source / "annotations" / "validate.csv").unlink()
    with pytest.raises(InputError, match="has train.csv but no validate.csv or val.csv"):
        read_kinetics(source, options("kinetics400", source))


def test_ssv2_classes_are_templates_without_brackets(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", placeholder)
    annotations = read_ssv2(source, options("ssv2", source))
    assert annotations.labels == [
        "Holding something next to something",
        "Pushing something from left to right",
        "Tearing something into two pieces",
    ]
    assert annotations.splits["train"][:3] == [Row("100.webm", 0), Row("101.webm", 0), Row("102.webm", 0)]
    assert len(annotations.splits["val"]) == 3


def test_ssv2_unknown_template_is_an_error(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", placeholder)
    train = source / "something-something-v2-train.json"
    train.write_text(json.dumps([{"id": "1", "template": "Juggling [something]"}]))
    with pytest.raises(
        InputError, match=r"video 1 has template 'Juggling \[something\]', which is not in the labels file"
    ):
        read_ssv2(source, options("ssv2", source))


def test_folder_split_is_stratified_seeded_and_complete(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates)
    annotations = read_folder(source, options("folder", source, test_fraction=0.4, seed=3))
    assert annotations.labels == ["cat", "dog", "fish"]
    test, train = annotations.splits["test"], annotations.splits["train"]
    assert [sum(row.label == label for row in test) for label in range(3)] == [2, 2, 2]
    assert len(train) == 9 and not set(train) & set(test)
    assert read_folder(source, options("folder", source, test_fraction=0.4, seed=3)).splits == annotations.splits
    assert read_folder(source, options("folder", source, test_fraction=0.4, seed=4)).splits != annotations.splits
    assert list(read_folder(source, options("folder", source, test_fraction=1)).splits) == ["test"]


@pytest.mark.parametrize(
    ("reader", "dataset", "expected"),
    [
        (read_hmdb51, "hmdb51", "testTrainMulti_7030_splits"),
        (read_ucf101, "ucf101", "classInd.txt"),
        (read_kinetics, "kinetics400", "train.csv and validate.csv"),
        (read_ssv2, "ssv2", "something-something-v2-labels.json"),
        (read_folder, "folder", "<root>/<class name>/<video file>"),
    ],
)
def test_a_source_of_another_shape_says_what_was_expected_and_found(tmp_path, reader, dataset, expected):
    (tmp_path / "holiday.jpg").write_text("")
    (tmp_path / "notes").mkdir()
    with pytest.raises(LayoutNotFound) as error:
        reader(tmp_path, options(dataset, tmp_path))
    assert expected in str(error.value)
    assert "found holiday.jpg, notes/" in str(error.value)
