"""Importing ViFi-CLIP's lists reproduces them exactly, paths mapped to the video root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd
import pytest

from msta_cli.core.errors import InputError
from msta_cli.core.prepare import PrepareOptions, prepare
from msta_cli.core.prepare.kinetics import read_kinetics
from msta_cli.core.prepare.vifi import VIFI_NAMES
from tests.core.prepare.layouts import VIFI, build_hmdb51_from_vifi, build_ucf101_from_vifi, vifi_labels, vifi_list

pytestmark = pytest.mark.skipif(not VIFI.is_dir(), reason=f"shared ViFi-CLIP lists not found at {VIFI}")

IMPORTED = {
    "test_{n}.csv": "{ds}_splits/val{n}.txt",
    "fewshot/train_k{n}.csv": "{ds}_splits/train1_few_shot_{n}.txt",
    "base2novel/train_s{n}.csv": "base2novel_splits/{ds}_splits/fs_base_s{n}_train.txt",
}


def expected_files(ds: str) -> dict[str, Path]:
    lists = VIFI / "datasets_splits"
    files = {"base2novel/base_test.csv": lists / f"base2novel_splits/{ds}_splits/base_val.txt"}
    files["base2novel/novel_test.csv"] = lists / f"base2novel_splits/{ds}_splits/novel_val.txt"
    for ours, theirs in IMPORTED.items():
        numbers = (2, 4, 8, 16) if "few_shot" in theirs else (1, 2, 3)
        files |= {ours.format(n=n): lists / theirs.format(n=n, ds=ds) for n in numbers}
    return files


@pytest.fixture(scope="module")
def hmdb51_source(tmp_path_factory) -> Path:
    """HMDB51's layout naming ViFi-CLIP's videos; tests must not change it."""
    return build_hmdb51_from_vifi(tmp_path_factory.mktemp("vifi") / "hmdb51")


@pytest.mark.parametrize(
    ("dataset", "ds", "build"), [("hmdb51", "hmdb", build_hmdb51_from_vifi), ("ucf101", "ucf", build_ucf101_from_vifi)]
)
def test_import_reproduces_every_vifi_list_exactly(tmp_path, dataset, ds, build):
    source = build(tmp_path / "source")
    out = tmp_path / "out"
    report = prepare(PrepareOptions(dataset=dataset, source=source, out=out, check=False, vifi_dir=VIFI))
    assert report.imported == ["splits", "fewshot", "base2novel"] and not report.problems
    for ours, theirs in expected_files(ds).items():
        written = pd.read_csv(out / ours)
        assert [
            (PurePosixPath(path).name, label) for path, label in zip(written["path"], written["label"], strict=True)
        ] == vifi_list(theirs), ours
        assert all((report.video_root / path).is_file() for path in written["path"])
    prefix = VIFI_NAMES[dataset].base_novel_prefix
    assert list(pd.read_csv(out / "labels.csv")["name"]) == vifi_labels(VIFI_NAMES[dataset].labels)
    for part in ("base", "novel"):
        assert list(pd.read_csv(out / f"base2novel/{part}_labels.csv")["name"]) == vifi_labels(
            f"{prefix}_{part}_labels.csv"
        )


def test_msta_draws_the_same_hmdb51_classes_as_vifi(tmp_path):
    source = build_hmdb51_from_vifi(tmp_path / "source")
    for split in (source / "testTrainMulti_7030_splits").glob("*_split1.txt"):  # the official 70 train videos per class
        lines = split.read_text().splitlines()
        split.write_text("".join(f"{line.split()[0]} {1 if i < 70 else 2}\n" for i, line in enumerate(lines[:100])))
    prepare(PrepareOptions(dataset="hmdb51", source=source, out=tmp_path / "out", check=False))
    for part in ("base", "novel"):
        assert list(pd.read_csv(tmp_path / "out" / f"base2novel/{part}_labels.csv")["name"]) == vifi_labels(
            f"hmdb_51_{part}_labels.csv"
        )


def test_listed_videos_that_are_not_found_are_reported(tmp_path):
    source = build_hmdb51_from_vifi(tmp_path / "source")
    gone = vifi_list(VIFI / "datasets_splits/hmdb_splits/train1_few_shot_2.txt")[0][0]
    next((source / "hmdb51_org").rglob(gone)).unlink()
    report = prepare(PrepareOptions(dataset="hmdb51", source=source, out=tmp_path / "out", check=False, vifi_dir=VIFI))
    assert [problem.path for problem in report.problems] == [f"brush_hair/{gone}"]  # once, by its longest name
    assert report.problems[0].reason.startswith("missing: not found below SOURCE (listed in train_1.csv, ")
    assert report.problems[0].reason.endswith(", fewshot/train_k2.csv)")
    assert len(pd.read_csv(tmp_path / "out" / "fewshot/train_k2.csv")) == 101


def test_a_partial_group_is_an_error_and_a_missing_one_is_sampled(tmp_path, hmdb51_source):
    source = hmdb51_source
    vifi = tmp_path / "vifi"
    (vifi / "labels").mkdir(parents=True)
    (vifi / "labels" / "hmdb_51_labels.csv").write_bytes((VIFI / "labels" / "hmdb_51_labels.csv").read_bytes())
    (vifi / "datasets_splits" / "hmdb_splits").mkdir(parents=True)
    (vifi / "datasets_splits" / "hmdb_splits" / "val1.txt").write_bytes(
        (VIFI / "datasets_splits/hmdb_splits/val1.txt").read_bytes()
    )
    options = PrepareOptions(dataset="hmdb51", source=source, out=tmp_path / "out", check=False, vifi_dir=vifi)
    with pytest.raises(InputError, match="has only part of ViFi-CLIP's splits lists; missing: .*val2.txt"):
        prepare(options)
    for split in (2, 3):
        (vifi / "datasets_splits" / "hmdb_splits" / f"val{split}.txt").write_bytes(
            (VIFI / f"datasets_splits/hmdb_splits/val{split}.txt").read_bytes()
        )
    report = prepare(options)
    assert report.imported == ["splits"]
    assert any("no ViFi-CLIP lists for fewshot" in note for note in report.notes)


def test_a_label_list_that_differs_is_refused(tmp_path, hmdb51_source):
    source = hmdb51_source
    vifi = tmp_path / "vifi"
    (vifi / "labels").mkdir(parents=True)
    text = (VIFI / "labels" / "hmdb_51_labels.csv").read_text().replace("kick ball", "kick a ball")
    (vifi / "labels" / "hmdb_51_labels.csv").write_text(text)
    with pytest.raises(InputError, match="does not match this dataset's labels .*20: 'kick a ball' vs 'kick ball'"):
        prepare(PrepareOptions(dataset="hmdb51", source=source, out=tmp_path / "out", check=False, vifi_dir=vifi))


@pytest.mark.parametrize(
    ("dataset", "names"), [("kinetics400", "kinetics_400_labels.csv"), ("kinetics600", "kinetics_600_labels.csv")]
)
def test_kinetics_class_ids_from_the_annotation_csvs_are_vifis(tmp_path, dataset, names):
    labels = vifi_labels(names)
    rows = [
        {"label": name, "youtube_id": f"v{i}", "time_start": 0, "time_end": 10}
        for i, name in enumerate(reversed(labels))
    ]
    for split in ("train", "validate"):
        pd.DataFrame(rows).to_csv(tmp_path / f"{split}.csv", index=False)
    assert read_kinetics(tmp_path, PrepareOptions(dataset=dataset, source=tmp_path, out=tmp_path)).labels == labels
