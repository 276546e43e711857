"""Whole runs on tiny official layouts: what lands in OUT, what is left out and why, and reruns."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from msta_cli import __version__
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.files import write_bytes_atomic
from msta_cli.core.prepare import PrepareOptions, prepare
from msta_cli.core.prepare.archives import rar_tool
from msta_cli.core.prepare.folder import NOT_IN_A_CLASS
from tests.core.prepare.layouts import build_folder, build_hmdb51, build_kinetics, build_ssv2, build_ucf101, place
from tests.core.prepare.rar import write_rar
from tests.helpers.videos import codec_available, write_video, write_zero_byte


needs_rar_tool = pytest.mark.skipif(rar_tool() is None, reason="no RAR extractor (bsdtar, 7z or unrar) on PATH")


def run(dataset: str, source: Path, out: Path, **changes):
    return prepare(PrepareOptions(dataset=dataset, source=source, out=out, workers=2, **changes))


def read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name, keep_default_na=False)


def snapshot(out: Path) -> dict[str, bytes]:
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def hmdb(tmp_path_factory, templates):
    root = tmp_path_factory.mktemp("hmdb")
    source = build_hmdb51(root / "source", templates)
    report = run("hmdb51", source, root / "out")
    return source, root / "out", report


def test_hmdb51_writes_every_file_of_the_layout(hmdb):
    _, out, _ = hmdb
    assert sorted(snapshot(out)) == sorted(
        ["dataset.yaml", "labels.csv", "problems.csv"]
        + [f"{part}_{n}.csv" for part in ("train", "test") for n in (1, 2, 3)]
        + [
            f"base2novel/{name}.csv"
            for name in ("base_labels", "novel_labels", "base_test", "novel_test", "train_s1", "train_s2", "train_s3")
        ]
        + [f"fewshot/train_k{k}.csv" for k in (2, 4, 8, 16)]
    )


def test_hmdb51_labels_and_split_sizes_leave_out_the_problems(hmdb):
    _, out, _ = hmdb
    labels = read(out, "labels.csv")
    assert list(labels["id"]) == list(range(51)) and labels["name"][0] == "brush hair" and labels["name"][50] == "wave"
    train = read(out, "train_1.csv")
    assert len(train) == 153 - 4 and len(read(out, "test_1.csv")) == 51
    assert "brush_hair/Clip_2_brush_hair_f_cm_np1_le_goo_2.avi" in set(train["path"])
    assert not {"brush_hair/Clip_1_brush_hair_f_cm_np1_le_goo_1.avi", "catch/Clip_2_catch_f_cm_np1_le_goo_2.avi"} & set(
        train["path"]
    )
    assert (
        len(read(out, "train_2.csv")) == 153 - 1 and len(read(out, "test_2.csv")) == 51 - 3
    )  # video 1 is test in split 2


def test_hmdb51_problems_list_every_missing_and_unreadable_video_with_its_reason(hmdb):
    _, out, report = hmdb
    problems = read(out, "problems.csv")
    reasons = dict(zip(problems["path"], problems["reason"], strict=True))
    assert list(reasons) == [
        "brush_hair/Clip_1_brush_hair_f_cm_np1_le_goo_1.avi",
        "cartwheel/Clip_1_cartwheel_f_cm_np1_le_goo_1.avi",
        "catch/Clip_2_catch_f_cm_np1_le_goo_2.avi",
        "chew/Clip_1_chew_f_cm_np1_le_goo_1.avi",
    ]
    empty, cut, missing, text = reasons.values()
    assert empty == "empty file (0 bytes)" and cut.startswith("damaged")
    assert missing == "missing: not found below SOURCE (listed in train_1.csv, train_2.csv, test_3.csv)"
    assert text.startswith("unreadable container") and "/" not in text.split("input:")[-1]  # no absolute path
    assert len(report.problems) == 4 and report.checked == 51 * 4 - 1


def test_hmdb51_base_novel_split_is_the_one_of_datasets_md(hmdb):
    _, out, _ = hmdb
    novel, base = read(out, "base2novel/novel_labels.csv"), read(out, "base2novel/base_labels.csv")
    labels = list(read(out, "labels.csv")["name"])
    assert list(novel["name"]) == labels[:25] and (novel["name"][0], novel["name"][24]) == ("brush hair", "pick")
    assert list(base["name"]) == labels[25:] and (base["name"][0], base["name"][25]) == ("pour", "wave")
    assert list(novel["id"]) == list(range(25)) and list(base["id"]) == list(range(26))


def test_hmdb51_base_novel_lists_index_their_own_label_lists(hmdb):
    _, out, _ = hmdb
    for draw in (1, 2, 3):
        train = read(out, f"base2novel/train_s{draw}.csv")
        assert len(train) == 26 * 3  # fewer than 16 per class here: all three usable videos
        assert sorted(set(train["label"])) == list(range(26))
    base_test, novel_test = read(out, "base2novel/base_test.csv"), read(out, "base2novel/novel_test.csv")
    assert len(base_test) == 26 and len(novel_test) == 25
    assert base_test["path"][0].startswith("pour/") and base_test["label"][0] == 0
    assert novel_test["path"][0].startswith("brush_hair/") and novel_test["label"].max() == 24


def test_hmdb51_fewshot_counts(hmdb):
    _, out, report = hmdb
    k2 = read(out, "fewshot/train_k2.csv")
    assert len(k2) == 102 and list(k2.groupby("label").size()) == [2] * 51
    assert len(read(out, "fewshot/train_k4.csv")) == 153 - 4  # all usable ones: 3 per class, 2 in four classes
    assert any(note.startswith("fewshot/train_k4.csv: 51 classes have fewer than 4") for note in report.notes)


def test_hmdb51_manifest(hmdb):
    source, out, _ = hmdb
    manifest = yaml.safe_load((out / "dataset.yaml").read_text())
    assert manifest["name"] == "hmdb51" and manifest["msta_version"] == __version__
    assert manifest["video_root"] == str((source / "hmdb51_org").absolute())
    assert manifest["num_classes"] == 51
    assert manifest["splits"]["train_1"] == {"file": "train_1.csv", "videos": 149, "excluded": 4}
    assert manifest["check"] == {
        "checked": 203,
        "ok": 200,
        "problems": 4,
        "missing": 1,
        "unreadable": 3,
        "unclassified": 0,
    }
    assert manifest["lists"]["fewshot/train_k2.csv"] == 102
    assert sorted(manifest["files"]) == sorted(snapshot(out))


def test_rerun_is_byte_identical_and_a_new_seed_changes_only_sampled_lists(hmdb, tmp_path):
    source, out, _ = hmdb
    first = snapshot(out)
    run("hmdb51", source, out)
    assert snapshot(out) == first
    run("hmdb51", source, tmp_path / "seed1", seed=1)
    changed = {name for name, data in snapshot(tmp_path / "seed1").items() if first[name] != data}
    assert "fewshot/train_k2.csv" in changed and changed <= {"fewshot/train_k2.csv", "dataset.yaml"}


def test_ucf101_matches_handstand_pushups_case_insensitively_and_says_so(tmp_path, templates):
    source = build_ucf101(tmp_path / "ucf", templates)
    report = run("ucf101", source, tmp_path / "out")
    test = read(tmp_path / "out", "test_1.csv")
    assert "HandStandPushups/v_HandStandPushups_g01_c01.avi" in set(test["path"])
    assert len(read(tmp_path / "out", "train_1.csv")) == 12 and not report.problems
    assert (
        "6 videos matched with different letter case, e.g. HandstandPushups/v_HandStandPushups_g01_c01.avi -> "
        "HandStandPushups/v_HandStandPushups_g01_c01.avi" in report.notes
    )
    assert list(read(tmp_path / "out", "base2novel/base_labels.csv")["name"]) == ["HandstandPushups", "YoYo"]


def test_kinetics400_excludes_absent_and_damaged_videos_and_reports_them(tmp_path, templates):
    source = build_kinetics(tmp_path / "k400", templates)
    report = run("kinetics400", source, tmp_path / "out")
    out = tmp_path / "out"
    assert len(read(out, "train.csv")) == 13 - 2 and len(read(out, "val.csv")) == 7 - 1
    problems = read(out, "problems.csv")
    assert list(problems["path"]) == [
        "absent_train_000000_000010.mp4",
        "absent_val_000005_000015.mp4",
        "train/abseiling/tr00_-x_Yz_000000_000010.mp4",
    ]
    assert list(problems["reason"][:2]) == [
        "missing: not found below SOURCE (listed in train.csv)",
        "missing: not found below SOURCE (listed in val.csv)",
    ]
    assert read(out, "labels.csv")["name"][1] == "massaging person's head"
    assert (
        len(read(out, "base2novel/base_labels.csv")) == 2 and "the annotations name 3 classes, not 400" in report.notes
    )
    assert not (out / "fewshot").exists()


def test_kinetics600_explains_what_the_zero_shot_lists_need(tmp_path, templates):
    source = build_kinetics(tmp_path / "k600", templates)
    report = run("kinetics600", source, tmp_path / "out", check=False)
    assert any(note.startswith("zero-shot lists not written") and "--k400-labels" in note for note in report.notes)
    assert not (tmp_path / "out" / "zeroshot").exists() and not (tmp_path / "out" / "base2novel").exists()


def test_kinetics600_zero_shot_splits_from_a_k400_label_list(tmp_path, templates):
    source = tmp_path / "k600"
    rows = [{"label": f"class {i:03d}", "youtube_id": f"v{i:03d}", "time_start": 0, "time_end": 10} for i in range(180)]
    (source / "annotations").mkdir(parents=True)
    for split in ("train", "validate"):
        pd.DataFrame(rows).to_csv(source / "annotations" / f"{split}.csv", index=False)
    for row in rows:
        (source / "videos" / f"{row['youtube_id']}_000000_000010.mp4").parent.mkdir(exist_ok=True)
        (source / "videos" / f"{row['youtube_id']}_000000_000010.mp4").touch()
    k400 = tmp_path / "k400.txt"
    k400.write_text("".join(f"class {i:03d}\n" for i in range(0, 180, 17)) + "dying hair\n")
    run("kinetics600", source, tmp_path / "out", check=False, k400_labels=k400)
    out = tmp_path / "out"
    splits = [list(read(out, f"zeroshot/split_{n}_labels.csv")["name"]) for n in (1, 2, 3)]
    assert all(len(names) == 160 and names == sorted(names) for names in splits) and splits[0] != splits[1]
    assert not {f"class {i:03d}" for i in range(0, 180, 17)} & set(splits[0])
    first = read(out, "zeroshot/split_1.csv")
    assert len(first) == 160 and list(first["label"]) == list(range(160))


@pytest.mark.parametrize(
    ("k400", "message"),
    [
        (None, r"--k400-labels .*missing.txt: file not found; pass the Kinetics-400 label list"),
        (
            "abseiling\n",
            r"--k400-labels .*k400.txt: only 2 of the 3 classes of the annotations are not in it; "
            r"the zero-shot splits need 160 \(is it the Kinetics-400 label list\?\)",
        ),
    ],
)
def test_a_k400_label_list_that_cannot_work_is_refused_before_any_video_is_looked_for(
    tmp_path, templates, monkeypatch, k400, message
):
    def no_index(root):
        raise AssertionError("videos indexed before --k400-labels was checked")

    monkeypatch.setattr("msta_cli.core.prepare.pipeline.VideoIndex", no_index)
    source = build_kinetics(tmp_path / "k600", templates)
    labels = tmp_path / ("missing.txt" if k400 is None else "k400.txt")
    if k400 is not None:
        labels.write_text(k400)
    with pytest.raises(InputError, match=message):
        run("kinetics600", source, tmp_path / "out", k400_labels=labels)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not codec_available("libvpx-vp9"), reason="this PyAV build has no VP9 encoder for .webm videos")
def test_ssv2_with_real_webm_videos(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", lambda path: write_video(path, num_frames=8, size=(32, 64)))
    report = run("ssv2", source, tmp_path / "out")
    out = tmp_path / "out"
    assert len(read(out, "train.csv")) == 9 and len(read(out, "val.csv")) == 3 and not report.problems
    assert read(out, "train.csv")["path"][0] == "100.webm"
    assert len(read(out, "fewshot/train_k2.csv")) == 6 and len(read(out, "base2novel/novel_labels.csv")) == 1


def test_folder_dataset(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates)
    report = run("folder", source, tmp_path / "out", test_fraction=0.4)
    assert len(read(tmp_path / "out", "test.csv")) == 6 and len(read(tmp_path / "out", "train.csv")) == 9
    assert report.video_root == source.absolute() and not (tmp_path / "out" / "base2novel").exists()


def test_a_rerun_removes_the_lists_it_no_longer_writes(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates)
    run("folder", source, tmp_path / "out", test_fraction=0.4)
    (tmp_path / "out" / "notes.txt").write_text("mine")
    report = run("folder", source, tmp_path / "out", test_fraction=1)
    assert report.removed == ["train.csv"] and not (tmp_path / "out" / "train.csv").exists()
    assert (tmp_path / "out" / "notes.txt").exists()


def test_a_rerun_interrupted_while_writing_leaves_no_stale_split_to_the_next_complete_run(
    tmp_path, templates, monkeypatch
):
    source = build_folder(tmp_path / "mine", templates)
    out = tmp_path / "out"
    run("folder", source, out, test_fraction=0.2, check=False)
    writes = []

    def interrupted(path, data):  # Ctrl-C after two files of the rerun are written
        if len(writes) == 2:
            raise KeyboardInterrupt
        writes.append(path.name)
        write_bytes_atomic(path, data)

    monkeypatch.setattr("msta_cli.core.prepare.writer.write_bytes_atomic", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run("folder", source, out, test_fraction=1, check=False)
    monkeypatch.undo()
    run("folder", source, out, test_fraction=1, check=False)
    assert not (out / "train.csv").exists() and len(read(out, "test.csv")) == 15
    assert sorted(snapshot(out)) == sorted(yaml.safe_load((out / "dataset.yaml").read_text())["files"])


def test_no_listed_video_found_is_an_input_error(tmp_path, templates):
    source = build_ucf101(tmp_path / "ucf", templates)
    for video in (source / "UCF-101").rglob("*.avi"):
        video.unlink()
    with pytest.raises(InputError, match="none of the listed videos is below"):
        run("ucf101", source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_videos_in_another_container_are_found_and_reported(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates, classes=("a", "b"), per_class=2)
    (source / "b" / "b_1.mp4").unlink()
    place(templates, source / "b" / "b_1.avi")
    report = run("folder", source, tmp_path / "out", test_fraction=0.5)
    assert not report.problems and "b/b_1.avi" in set(read(tmp_path / "out", "train.csv")["path"]) | set(
        read(tmp_path / "out", "test.csv")["path"]
    )


def test_folder_videos_outside_class_folders_are_listed_as_problems(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates, classes=("a", "b"), per_class=2)
    place(templates, source / "stray.mp4")
    report = run("folder", source, tmp_path / "out", test_fraction=0.5)
    assert read(tmp_path / "out", "problems.csv").values.tolist() == [["stray.mp4", NOT_IN_A_CLASS]]
    assert report.problems and yaml.safe_load((tmp_path / "out" / "dataset.yaml").read_text())["check"] == {
        "checked": 4,
        "ok": 4,
        "problems": 1,
        "missing": 0,
        "unreadable": 0,
        "unclassified": 1,
    }


def test_folder_split_is_drawn_from_the_videos_that_pass_the_check(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates, classes=("a", "b"), per_class=3)
    write_zero_byte(source / "a" / "a_1.mp4")  # the one seed 0 used to put in test, leaving class a none there
    run("folder", source, tmp_path / "out", test_fraction=0.2)
    for split in ("train", "test"):
        assert sorted(set(read(tmp_path / "out", f"{split}.csv")["label"])) == [0, 1]
    assert "a/a_1.mp4" in set(read(tmp_path / "out", "problems.csv")["path"])


def test_a_folder_class_without_a_usable_video_keeps_its_id_and_is_named(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates, classes=("a", "b", "c"), per_class=2)
    for video in (source / "b").iterdir():
        write_zero_byte(video)
    report = run("folder", source, tmp_path / "out", test_fraction=0.5)
    assert list(read(tmp_path / "out", "labels.csv")["name"]) == ["a", "b", "c"]
    assert set(read(tmp_path / "out", "train.csv")["label"]) == {0, 2}
    note = "1 classes have no usable video (see problems.csv) and are in no list; they keep their id in labels.csv: b"
    assert note in report.notes and note in yaml.safe_load((tmp_path / "out" / "dataset.yaml").read_text())["notes"]


@pytest.mark.parametrize(
    ("fraction", "note"),
    [
        (0.5, "train.csv has no video of 1 classes, whose single usable video is in test.csv: b"),
        (0.2, "test.csv has no video of 1 classes, whose single usable video is in train.csv: b"),
    ],
)
def test_a_folder_class_with_a_single_usable_video_is_named_for_the_split_without_it(
    tmp_path, templates, fraction, note
):
    source = build_folder(tmp_path / "mine", templates, classes=("a", "b"), per_class=2)
    write_zero_byte(source / "b" / "b_1.mp4")
    report = run("folder", source, tmp_path / "out", test_fraction=fraction)
    assert note in report.notes and not any("no usable video" in note for note in report.notes)


def test_a_broken_class_folder_link_is_named_in_the_notes(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates, classes=("a", "b"), per_class=2)
    (source / "cats").symlink_to("/mnt/unmounted/cats")
    report = run("folder", source, tmp_path / "out", test_fraction=0.5)
    assert (
        "1 entries below SOURCE could not be read and were skipped, with any videos in them: "
        "cats (broken link to /mnt/unmounted/cats); mount, fix or remove them"
    ) in report.notes
    assert report.num_classes == 2


def test_a_split_that_would_be_empty_stops_the_run_before_writing(tmp_path, templates):
    source = build_folder(tmp_path / "mine", templates, classes=("a", "b"), per_class=2)
    for video in source.rglob("*.mp4"):
        write_zero_byte(video)
    with pytest.raises(
        MstaError,
        match=r"train.csv and test.csv would be empty \(4 videos missing or unreadable, "
        r"e.g. a/a_0.mp4: empty file \(0 bytes\)\); nothing was written",
    ):
        run("folder", source, tmp_path / "out", test_fraction=0.5)
    assert not (tmp_path / "out").exists()


def test_download_is_skipped_when_source_holds_the_extracted_dataset(tmp_path, templates, monkeypatch):
    def no_download(*args):
        raise AssertionError("downloaded although the extracted layout is in SOURCE")

    monkeypatch.setattr("msta_cli.core.prepare.source.download", no_download)
    source = build_ucf101(tmp_path / "ucf", templates)
    report = run("ucf101", source, tmp_path / "out", check=False, download=True)
    assert report.lists["train_1.csv"].written == 12
    assert f"--download: {source} holds the extracted dataset already; nothing downloaded" in report.notes


def test_hmdb51_lists_without_the_extracted_videos_point_at_the_videos_archive(tmp_path, templates):
    source = build_hmdb51(tmp_path / "hmdb", templates)
    for video in (source / "hmdb51_org").rglob("*.avi"):
        video.unlink()
    with pytest.raises(InputError) as error:
        run("hmdb51", source, tmp_path / "out")
    assert "none of the listed videos is below" in str(error.value)
    assert (
        f"if they are still in hmdb51_org.rar, put it into {source} (msta extracts it into a SOURCE without videos; "
        f"--download fetches it) or extract it and the RARs inside it (one per class) into {source / 'hmdb51_org'} "
        "by hand" in str(error.value)
    )


def ucf101_archived(root: Path, templates, lists: bool = True, videos: bool = True) -> tuple[Path, dict[str, str]]:
    """A UCF101 copy with its lists, its videos or both still in their official archives; the archives' sha256."""
    source = build_ucf101(root, templates)
    pins = {}
    if lists:
        archive = source / "UCF101TrainTestSplits-RecognitionTask.zip"
        with zipfile.ZipFile(archive, "w") as handle:
            for path in sorted((source / "ucfTrainTestlist").iterdir()):
                handle.write(path, f"ucfTrainTestlist/{path.name}")
        shutil.rmtree(source / "ucfTrainTestlist")
        pins[archive.name] = hashlib.sha256(archive.read_bytes()).hexdigest()
    if videos:
        members = {p.relative_to(source).as_posix(): p.read_bytes() for p in sorted((source / "UCF-101").rglob("*.avi"))}
        archive = write_rar(source / "UCF101.rar", members)
        shutil.rmtree(source / "UCF-101")
        pins[archive.name] = hashlib.sha256(archive.read_bytes()).hexdigest()
    return source, pins


def test_videos_extracted_by_hand_are_used_and_only_the_lists_archive_is_extracted(tmp_path, templates):
    source, pins = ucf101_archived(tmp_path / "ucf", templates, videos=False)
    (source / "UCF101.rar").write_bytes(b"Rar!\x1a\x07\x00 not the official file")  # hashing it would fail the run
    for _ in range(2):  # a rerun, with the lists extracted, does the same
        report = run("ucf101", source, tmp_path / "out", check=False, sha256=pins)
        assert report.lists["train_1.csv"].written == 12 and report.video_root == (source / "UCF-101").absolute()
        assert (
            f"UCF101.rar not extracted: {source} holds videos already (extracted by hand?), used as they are"
            in report.notes
        )
    assert not (source / ".UCF101.rar.extracted").exists()


@needs_rar_tool
def test_the_videos_archive_is_extracted_when_source_has_the_lists_but_no_videos(tmp_path, templates):
    source, pins = ucf101_archived(tmp_path / "ucf", templates, lists=False)
    report = run("ucf101", source, tmp_path / "out", check=False, sha256=pins)
    assert report.lists["train_1.csv"].written == 12 and report.video_root == (source / "UCF-101").absolute()


@needs_rar_tool
def test_download_fetches_the_videos_archive_when_source_has_only_the_lists(tmp_path, templates, monkeypatch):
    served, pins = ucf101_archived(tmp_path / "served", templates, lists=False)
    source = build_ucf101(tmp_path / "source", templates)
    shutil.rmtree(source / "UCF-101")
    fetched = []

    def fake_download(url, dest, sha256, progress):
        fetched.append(dest.name)
        shutil.copyfile(served / dest.name, dest)

    monkeypatch.setattr("msta_cli.core.prepare.source.download", fake_download)
    report = run("ucf101", source, tmp_path / "out", check=False, download=True, sha256=pins)
    assert fetched == ["UCF101.rar"] and report.lists["train_1.csv"].written == 12
    assert (
        f"--download: UCF101TrainTestSplits-RecognitionTask.zip not fetched: {source} holds the annotation files "
        "already" in report.notes
    )


def test_kinetics_videos_still_in_their_tar_archives_say_how_to_extract_them(tmp_path, templates):
    source = build_kinetics(tmp_path / "k400", templates)
    for split in ("train", "val"):
        shutil.rmtree(source / split)
        (source / split).mkdir()
        (source / split / "part_0.tar.gz").write_bytes(b"")
    with pytest.raises(InputError) as error:
        run("kinetics400", source, tmp_path / "out")
    assert (
        f"{source} holds 2 tar archives (train/part_0.tar.gz, val/part_0.tar.gz), not videos: extract each in its "
        f"folder ({source / 'train'}, {source / 'val'}), e.g. "
        f'`cd {source / "train"} && for f in *.tar.gz; do tar -xf "$f"; done`, then rerun' in str(error.value)
    )


def test_ssv2_videos_still_in_the_archive_parts_say_how_to_join_and_extract_them(tmp_path):
    source = build_ssv2(tmp_path / "ssv2", lambda path: None)
    for part in range(20):
        (source / f"20bn-something-something-v2-{part:02d}").write_bytes(b"")
    with pytest.raises(InputError) as error:
        run("ssv2", source, tmp_path / "out")
    assert (
        f"{source} holds 20 of the 20 parts of SSv2's video archive (20bn-something-something-v2-00, "
        "20bn-something-something-v2-01 and 18 more), not videos: extract them with "
        f"`cd {source} && cat 20bn-something-something-v2-?? | tar -xz`" in str(error.value)
    )
    (source / "20bn-something-something-v2-19").unlink()
    with pytest.raises(InputError, match="holds 19 of the 20 parts .*, not videos: get the missing parts, then extract"):
        run("ssv2", source, tmp_path / "out")


def test_vifi_lists_for_a_dataset_without_them_are_refused_up_front(tmp_path):
    with pytest.raises(
        InputError,
        match="--vifi-clip-splits: ViFi-CLIP publishes lists for hmdb51, ucf101, kinetics400, kinetics600, ssv2 only, "
        "not folder",
    ):
        run("folder", tmp_path / "absent", tmp_path / "out", vifi_dir=tmp_path)


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        ("notes.txt", r"notes.txt: is a file, not a folder"),
        ("notes.txt/out", r"notes.txt/out: \S+notes.txt is a file, not a folder"),
        ("/proc/msta-out", r"cannot write in /proc"),
    ],
)
def test_an_unusable_output_folder_is_refused_before_any_work(tmp_path, out, reason):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=f"--out .*{reason}"):
        run("hmdb51", tmp_path / "absent", tmp_path / out)
    assert (tmp_path / "notes.txt").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt"
    ]
