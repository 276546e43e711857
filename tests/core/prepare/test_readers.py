"""Each official layout's annotations: labels, ids and split sizes, and errors that say what was expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msta_cli.core.errors import InputError
from msta_cli.core.prepare.annotations import LayoutNotFound, Lists, Problem, Row
from msta_cli.core.prepare.folder import NOT_IN_A_CLASS, read_folder, split_folder, videos_for_test
from msta_cli.core.prepare.hmdb51 import read_hmdb51
from msta_cli.core.prepare.kinetics import read_kinetics
from msta_cli.core.prepare.options import PrepareOptions
from msta_cli.core.prepare.ssv2 import read_ssv2
from msta_cli.core.prepare.writer import MANIFEST, manifest_yaml, write_outputs
from msta_cli.core.prepare.ucf101 import read_ucf101
from tests.core.prepare.layouts import SSV2_TEMPLATES, build_folder, build_hmdb51, build_kinetics, build_ssv2, build_ucf101, placeholder

APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02"  # the header of a `._<name>` file


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


@pytest.mark.parametrize(
    ("dataset", "build", "damaged"),
    [
        ("hmdb51", build_hmdb51, "testTrainMulti_7030_splits/pour_test_split3.txt"),
        ("ucf101", build_ucf101, "ucfTrainTestlist/testlist03.txt"),
        ("ucf101", build_ucf101, "ucfTrainTestlist/classInd.txt"),
    ],
)
def test_an_empty_annotation_list_is_named_not_a_class_or_split_left_out(tmp_path, templates, dataset, build, damaged):
    source = build(tmp_path / dataset, templates)
    (source / damaged).write_text("\n")
    reader = {"hmdb51": read_hmdb51, "ucf101": read_ucf101}[dataset]
    with pytest.raises(InputError, match=rf"{damaged}: empty; an official annotation list is never empty"):
        reader(source, options(dataset, source))


def test_an_empty_ssv2_split_file_is_named(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", placeholder)
    (source / "something-something-v2-validation.json").write_text("[]")
    with pytest.raises(InputError, match=r"validation.json: an empty list; the official file lists every video of its split"):
        read_ssv2(source, options("ssv2", source))


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


def test_an_empty_train_csv_anywhere_below_source_is_named(tmp_path, templates):
    source = build_kinetics(tmp_path / "k400", templates)
    (source / "0-old").mkdir()
    (source / "0-old" / "train.csv").write_text("")
    with pytest.raises(InputError, match=r"0-old/train.csv: empty file; expected a CSV with columns label,youtube_id"):
        read_kinetics(source, options("kinetics400", source))


def test_a_malformed_kinetics_csv_is_named_with_pandas_reason(tmp_path, templates):
    source = build_kinetics(tmp_path / "k400", templates)
    validate = source / "annotations" / "validate.csv"
    validate.write_text(validate.read_text() + "abseiling,x,1,2,validate,0,extra,fields\n")
    with pytest.raises(InputError, match=r"validate.csv: not a readable CSV \(Error tokenizing data.*line 9"):
        read_kinetics(source, options("kinetics400", source))


def test_kinetics_rows_without_times_are_named(tmp_path, templates):
    source = build_kinetics(tmp_path / "k400", templates)
    train = source / "annotations" / "train.csv"
    lines = train.read_text().splitlines()
    lines[3] = lines[3].replace(",20,30,", ",,30,")
    train.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputError,
        match=r"train.csv: 1 rows lack a youtube_id or a number in time_start or time_end, "
        r"first row 3 after the header \(youtube_id tr02_-x_Yz\)",
    ):
        read_kinetics(source, options("kinetics400", source))


def test_kinetics_ids_and_labels_that_pandas_would_read_as_missing_are_kept(tmp_path, templates):
    source = build_kinetics(tmp_path / "k400", templates)
    train = source / "annotations" / "train.csv"
    lines = train.read_text().splitlines()
    label, youtube_id = lines[1].split(",")[:2]
    train.write_text("\n".join([lines[0], *(line.replace(youtube_id, "NA") for line in lines[1:])]) + "\n")
    annotations = read_kinetics(source, options("kinetics400", source))
    assert any(row.path.endswith("NA_000000_000010.mp4") for row in annotations.splits["train"])
    (source / "annotations" / "validate.csv").write_text(
        (source / "annotations" / "validate.csv").read_text().replace(label, "None")
    )
    train.write_text(train.read_text().replace(label, "None"))
    assert "None" in read_kinetics(source, options("kinetics400", source)).labels


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


def test_ssv2_labels_file_whose_names_keep_the_brackets(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", placeholder)
    expected = read_ssv2(source, options("ssv2", source))
    labels = source / "something-something-v2-labels.json"
    bracketed = {template: str(i) for i, template in enumerate(sorted(SSV2_TEMPLATES))}
    labels.write_text(json.dumps(bracketed))
    assert read_ssv2(source, options("ssv2", source)) == expected


def test_ssv2_download_package_with_unprefixed_label_files(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", placeholder)
    expected = read_ssv2(source, options("ssv2", source))
    (source / "labels").mkdir()
    for name in ("labels", "train", "validation"):
        (source / f"something-something-v2-{name}.json").rename(source / "labels" / f"{name}.json")
    (source / "labels" / "test.json").write_text(json.dumps([{"id": "999"}]))
    assert read_ssv2(source, options("ssv2", source)) == expected


def test_ssv2_unknown_template_is_an_error(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", placeholder)
    train = source / "something-something-v2-train.json"
    train.write_text(json.dumps([{"id": "1", "template": "Juggling [something]"}]))
    with pytest.raises(
        InputError, match=r"video 1 has template 'Juggling \[something\]', which is not in the labels file"
    ):
        read_ssv2(source, options("ssv2", source))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('["Holding something"]', r"expected an object \{\"<class name>\": \"<id>\", ...\}, found \[\"Holding"),
        ('{"Holding something": "0",', r"not valid JSON \(Expecting property name"),
        ('{"Holding something": "zero"}', r"the id of 'Holding something': expected an integer, found 'zero'"),
        (b'{"caf\xe9": "0"}', r"not valid JSON \('utf-8' codec can't decode"),
    ],
)
def test_a_broken_ssv2_labels_file_is_named_with_the_reason(tmp_path, content, message):
    source = build_ssv2(tmp_path / "ssv2", placeholder)
    labels = source / "something-something-v2-labels.json"
    labels.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=r"something-something-v2-labels.json: .*" + message):
        read_ssv2(source, options("ssv2", source))


def test_ssv2_split_file_that_is_not_a_list_is_named(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", placeholder)
    (source / "something-something-v2-validation.json").write_text('{"id": "1"}')
    with pytest.raises(InputError, match=r"validation.json: expected a list of .* entries, found \{\"id\": \"1\"\}"):
        read_ssv2(source, options("ssv2", source))


def folder_split(source: Path, **changes) -> Lists:
    """read_folder then split_folder, as the pipeline does when every video passes the check."""
    folder_options = options("folder", source, **changes)
    annotations = read_folder(source, folder_options)
    (videos,) = annotations.splits.values()
    return split_folder(videos, annotations.labels, folder_options)


def test_folder_split_is_stratified_seeded_and_complete(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates)
    assert read_folder(source, options("folder", source)).labels == ["cat", "dog", "fish"]
    splits = folder_split(source, test_fraction=0.4, seed=3).rows
    test, train = splits["test.csv"], splits["train.csv"]
    assert [sum(row.label == label for row in test) for label in range(3)] == [2, 2, 2]
    assert len(train) == 9 and not set(train) & set(test)
    assert folder_split(source, test_fraction=0.4, seed=3).rows == splits
    assert folder_split(source, test_fraction=0.4, seed=4).rows != splits
    assert list(folder_split(source, test_fraction=1).rows) == ["test.csv"]
    assert list(folder_split(source, test_fraction=0).rows) == ["train.csv"]


@pytest.mark.parametrize(
    ("videos", "fraction", "expected"),
    [
        (5, 0.5, 3),  # 2.5 rounds up; round() would give 2
        (45, 0.7, 32),  # 31.5 as typed, although 45 * 0.7 is 31.499999999999996 in floating point
        (10, 0.25, 3),
        (5, 0.1, 1),  # 0.5 rounds up
        (2, 0.1, 1),  # 0.2 rounds to 0, but a class of two keeps one test video
        (2, 0.9, 1),  # ... and one training video
        (1, 0.2, 0),
        (1, 0.5, 1),
        (4, 0, 0),
        (4, 1, 4),
    ],
)
def test_test_videos_per_class_round_half_up_and_leave_one_in_each_split(videos, fraction, expected):
    assert videos_for_test(videos, fraction) == expected


def test_folders_without_a_video_file_are_named_in_a_note_not_dropped_unseen(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates)
    (source / "empty").mkdir()
    (source / "notes_only").mkdir()
    (source / "notes_only" / "readme.txt").write_text("x")
    (source / ".cache").mkdir()
    annotations = read_folder(source, options("folder", source))
    assert annotations.labels == ["cat", "dog", "fish"]
    assert "2 folders hold no video file and are not classes: empty, notes_only" in annotations.notes


def test_every_class_of_two_or_more_videos_gets_train_and_test_videos(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates, classes=("few", "more"), per_class=2)
    for i in range(2, 9):
        placeholder(source / "more" / f"more_{i}.mp4")
    splits = folder_split(source, test_fraction=0.1).rows
    assert [[row.label for row in splits[split]].count(0) for split in ("train.csv", "test.csv")] == [1, 1]
    assert [[row.label for row in splits[split]].count(1) for split in ("train.csv", "test.csv")] == [8, 1]


def test_videos_outside_the_class_folders_are_reported_not_dropped(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates, classes=("cat", "dog"), per_class=1)
    placeholder(source / "loose.mp4")
    placeholder(source / "Clip.MTS")
    annotations = read_folder(source, options("folder", source))
    assert annotations.problems == [
        Problem("Clip.MTS", NOT_IN_A_CLASS),
        Problem("loose.mp4", NOT_IN_A_CLASS),
    ]
    assert [row.path for row in annotations.splits["videos"]] == ["cat/cat_0.mp4", "dog/dog_0.mp4"]


def test_mpeg_transport_streams_are_videos(tmp_path):
    for name in ("a/one.ts", "a/two.MTS", "b/three.m2ts"):
        placeholder(tmp_path / name)
    rows = read_folder(tmp_path, options("folder", tmp_path)).splits["videos"]
    assert rows == [Row("a/one.ts", 0), Row("a/two.MTS", 0), Row("b/three.m2ts", 1)]


def test_common_containers_ffmpeg_reads_are_videos_and_other_files_are_counted_by_extension(tmp_path):
    containers = (".f4v", ".3g2", ".divx", ".qt", ".vob", ".ASF", ".mxf", ".m2ts", ".mts", ".ogv", ".wmv")
    for suffix in containers:
        placeholder(tmp_path / "a" / f"clip{suffix}")
    for name in ("b/x.mp4", "b/thumb.jpg", "b/cover.JPG", "a/notes.txt", "b/README", ".DS_Store", "b/.hidden.txt"):
        placeholder(tmp_path / name)
    annotations = read_folder(tmp_path, options("folder", tmp_path))
    assert len(annotations.splits["videos"]) == len(containers) + 1
    assert annotations.notes == [
        "4 files are not videos by their extension and were skipped: no extension (1, e.g. b/README), "
        ".jpg (2, e.g. b/cover.JPG), .txt (1, e.g. a/notes.txt) (docs/data.md lists the video extensions msta reads)"
    ]


def test_a_single_class_folder_is_an_input_error_pointing_at_the_folder_holding_the_classes(tmp_path):
    for name in ("red", "green", "blue"):
        placeholder(tmp_path / "my_actions" / name / f"{name}.mp4")
    with pytest.raises(InputError) as error:
        read_folder(tmp_path, options("folder", tmp_path))
    assert str(error.value) == (
        f"{tmp_path} has videos in one class folder only (my_actions/); a folder dataset needs at least 2 classes, "
        "one folder per class below SOURCE; my_actions/ has folders with videos (blue, green, red): if they are "
        f"the classes, make SOURCE {tmp_path / 'my_actions'}"
    )

    flat = tmp_path / "flat"
    placeholder(flat / "cat" / "cat.mp4")
    placeholder(flat / "loose.mp4")
    with pytest.raises(InputError, match=r"one class folder only \(cat/\); .*one folder per class below SOURCE$"):
        read_folder(flat, options("folder", flat))


def test_macos_copy_artefacts_are_ignored(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates, classes=("cat", "dog"), per_class=1)
    (source / "__MACOSX" / "cat").mkdir(parents=True)
    (source / "__MACOSX" / "cat" / "._cat_0.mp4").write_bytes(APPLE_DOUBLE)
    (source / "cat" / "._cat_0.mp4").write_bytes(APPLE_DOUBLE)
    annotations = read_folder(source, options("folder", source))
    assert annotations.labels == ["cat", "dog"] and len(annotations.splits["videos"]) == 2
    assert not any("._" in note for note in annotations.notes)


def test_hmdb51_ignores_macos_copies_of_its_split_files(tmp_path, templates):
    source = build_hmdb51(tmp_path / "hmdb", templates)
    for folder in (source / "testTrainMulti_7030_splits", source / "__MACOSX" / "testTrainMulti_7030_splits"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "._brush_hair_test_split1.txt").write_bytes(APPLE_DOUBLE)
    annotations = read_hmdb51(source, options("hmdb51", source))
    assert len(annotations.labels) == 51 and len(annotations.splits["train_1"]) == 153


def test_ssv2_ignores_a_macos_copy_of_its_labels_file(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", placeholder)
    (source / "__MACOSX").mkdir()
    (source / "__MACOSX" / "._something-something-v2-labels.json").write_bytes(APPLE_DOUBLE)
    (source / "._something-something-v2-labels.json").write_bytes(APPLE_DOUBLE)
    assert len(read_ssv2(source, options("ssv2", source)).labels) == 3


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


def test_the_lists_of_an_earlier_run_with_out_inside_source_are_not_counted_as_files_of_the_dataset(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates)
    first = read_folder(source, options("folder", source))  # out: SOURCE/out
    write_outputs(source / "out", {"labels.csv": b"id,name\n", MANIFEST: manifest_yaml({"files": ["labels.csv", MANIFEST]})})
    (source / "out" / "mine.csv").write_text("a user's file is still counted\n")
    second = read_folder(source, options("folder", source))
    assert first.notes[0].startswith("1 files are not videos") and "README.txt" in first.notes[0]
    assert second.notes[0].startswith("2 files are not videos") and "out/mine.csv" in second.notes[0]
    assert "labels.csv" not in second.notes[0] and MANIFEST not in second.notes[0]
