import csv
import io
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from msta_cli.cli import app
from msta_cli.core.inference.export import export_model
from tests.core.inference.helpers import FRAMES, SAMPLING, dark_bright_classes, tiny_adapted_model, write_checkpoint, write_two_scene_video
from tests.helpers.datasets import tiny_recipe, write_recipe
from tests.helpers.videos import truncate, write_not_a_video, write_video

runner = CliRunner()
LABELS = ["brush hair", "cartwheel", "climb", "dive"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_backbone_name):
    """A checkpoint, a labels.txt and a folder of three videos (one in a subfolder)."""
    root = tmp_path_factory.mktemp("predict")
    write_checkpoint(root / "ckpt", tiny_backbone_name)
    (root / "labels.txt").write_text("# HMDB51 subset\n" + "\n".join(LABELS) + "\n")
    write_video(root / "videos" / "a.mp4", num_frames=12)
    write_video(root / "videos" / "b.avi", num_frames=30, size=(48, 64))
    write_video(root / "videos" / "more" / "c.mkv", num_frames=20)
    return root


def _predict(setup, *arguments: str):
    base = ["predict", "--model", str(setup / "ckpt"), "--frames", str(FRAMES), "--device", "cpu", "--workers", "0"]
    return runner.invoke(app, [*base, *arguments])


def _from_json(text: str) -> dict[str, list[tuple[str, float]]]:
    return {p["path"]: [(t["label"], t["probability"]) for t in p["top"]] for p in json.loads(text)["predictions"]}


def test_table_csv_and_json_agree(setup):
    arguments = [str(setup / "videos"), "--labels", str(setup / "labels.txt"), "--top-k", "3"]
    as_json = _predict(setup, *arguments, "--format", "json")
    as_csv = _predict(setup, *arguments, "--format", "csv")
    as_table = _predict(setup, *arguments)
    assert as_json.exit_code == as_csv.exit_code == as_table.exit_code == 0, as_json.output
    from_json = _from_json(as_json.stdout)
    assert sorted(from_json) == sorted(str(p) for p in (setup / "videos").rglob("*.*"))
    from_csv: dict[str, list[tuple[str, float]]] = {}
    for row in csv.DictReader(io.StringIO(as_csv.stdout)):
        from_csv.setdefault(row["path"], []).append((row["label"], float(row["probability"])))
    rows = re.findall(r"│ (\d) │ ([a-z ]+?) +│ +([0-9.]+) │", as_table.stdout)
    assert len(rows) == 9 and all(Path(path).name in as_table.stdout for path in from_json)
    for path, top in from_json.items():
        assert len(top) == 3 and all(label in LABELS for label, _ in top)
        assert [label for label, _ in from_csv[path]] == [label for label, _ in top]
        assert [p for _, p in from_csv[path]] == pytest.approx([p for _, p in top], abs=1e-6)
    first = from_json[str(setup / "videos" / "a.mp4")]
    assert [label for _, label, _ in rows[:3]] == [label for label, _ in first]
    assert [float(p) for _, _, p in rows[:3]] == pytest.approx([p for _, p in first], abs=1e-4)


def test_labels_from_text_csv_and_dataset_name_give_the_same_answer(setup, tmp_path, monkeypatch):
    dataset = tmp_path / "data" / "mini"
    dataset.mkdir(parents=True)
    (dataset / "labels.csv").write_text("id,name\n" + "".join(f"{i},{name}\n" for i, name in enumerate(LABELS)))
    monkeypatch.chdir(tmp_path)
    video = str(setup / "videos" / "a.mp4")
    answers = [_from_json(_predict(setup, video, "--labels", labels, "--format", "json").stdout) for labels in (str(setup / "labels.txt"), str(dataset / "labels.csv"), "mini", "data/mini")]
    assert all(answer == answers[0] for answer in answers[1:])


def test_a_corrupt_file_is_reported_and_the_rest_finish_with_exit_code_1(setup, tmp_path):
    folder = tmp_path / "batch"
    for name in ("one.mp4", "two.mp4"):
        write_video(folder / name, num_frames=16)
    truncate(write_video(folder / "broken.mp4", num_frames=16), 0.3)
    result = _predict(setup, str(folder), "--labels", str(setup / "labels.txt"), "--format", "json", "--output", str(tmp_path / "out.json"))
    assert result.exit_code == 1, result.output
    assert re.search(rf"failed: {re.escape(str(folder / 'broken.mp4'))}: \S", result.stderr)
    assert "1 of 3 input(s) failed" in result.stderr
    payload = json.loads((tmp_path / "out.json").read_text())
    assert sorted(p["path"] for p in payload["predictions"]) == [str(folder / "one.mp4"), str(folder / "two.mp4")]
    assert [f["path"] for f in payload["failures"]] == [str(folder / "broken.mp4")]


def test_the_header_and_the_failure_count_agree_when_an_input_names_nothing(setup, tmp_path):
    video = str(setup / "videos" / "a.mp4")
    result = _predict(setup, video, str(tmp_path / "missing.mp4"), "--labels", str(setup / "labels.txt"))
    assert result.exit_code == 1, result.output
    assert "1 video(s) and 1 input(s) that name none" in result.stderr
    assert f"failed: {tmp_path / 'missing.mp4'}: file not found" in result.stderr
    assert "1 of 2 input(s) failed" in result.stderr


def test_a_non_video_alone_is_exit_code_2_with_a_clear_message(setup, tmp_path):
    notes = write_not_a_video(tmp_path / "notes.txt")
    result = _predict(setup, str(notes), "--labels", str(setup / "labels.txt"))
    assert result.exit_code == 2
    assert f"failed: {notes}: unreadable container" in result.stderr
    assert "error: no input could be read as a video" in result.stderr
    missing = _predict(setup, str(tmp_path / "nothing-*.mp4"), "--labels", str(setup / "labels.txt"))
    assert missing.exit_code == 2 and "pattern matches no video files" in missing.stderr


@pytest.mark.parametrize("timeline", [[], ["--timeline"]])
def test_json_is_written_with_the_failures_also_when_no_input_names_a_video(setup, tmp_path, timeline):
    output = tmp_path / "out.json"
    result = _predict(setup, str(tmp_path / "absent.mp4"), "--labels", str(setup / "labels.txt"), "--output", str(output), *timeline)
    assert result.exit_code == 2, result.output
    written = json.loads(output.read_text())
    assert written["failures"] == [{"path": str(tmp_path / "absent.mp4"), "reason": "file not found"}]


def test_duplicate_labels_are_rejected_with_their_lines(setup, tmp_path):
    (tmp_path / "dup.txt").write_text("run\njump\nrun\n")
    result = _predict(setup, str(setup / "videos"), "--labels", str(tmp_path / "dup.txt"))
    assert result.exit_code == 2
    assert "duplicate class names: 'run' on lines 1, 3" in result.stderr and "Traceback" not in result.output


def test_zero_shot_and_option_mistakes(setup, tiny_backbone_name):
    video = str(setup / "videos" / "a.mp4")
    zero_shot = runner.invoke(app, ["predict", video, "--labels", str(setup / "labels.txt"), "--backbone", tiny_backbone_name, "--format", "csv"])
    assert zero_shot.exit_code == 0, zero_shot.output
    assert "zero-shot" in zero_shot.stderr and len(zero_shot.stdout.splitlines()) == 1 + 4
    for arguments, message in (
        (["--views", "2x2"], "views '2x2'"),
        (["--format", "xml"], "--format 'xml'"),
        (["--output", "out.txt"], "give --format csv or json"),
        (["--timeline", "--window", "soon"], "--window 'soon'"),
    ):
        result = _predict(setup, video, "--labels", str(setup / "labels.txt"), *arguments)
        assert result.exit_code == 2 and message in result.stderr, result.output
    for arguments, message in (
        (["--backbone", "msta-tiyn"], "--backbone 'msta-tiyn' is unknown. Did you mean 'msta-tiny'?"),
        (["--backbone", "ViT-B-16", "--pretrained", "openia"], "--pretrained 'openia' is unknown."),
        (["--backbone", "msta-tiny", "--pretrained", "w.pt"], "--pretrained cannot be combined with --backbone msta-tiny"),
    ):
        result = runner.invoke(app, ["predict", video, "--labels", str(setup / "labels.txt"), *arguments])
        assert result.exit_code == 2 and message in " ".join(result.stderr.split()), result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--window", "3s"], "--window needs --timeline"),
        (["--window", "2s", "--stride", "1s", "--timeline-dir", "out"], "--window, --stride, --timeline-dir need --timeline"),
    ],
)
def test_window_options_without_timeline_exit_2_instead_of_being_ignored(setup, arguments, message):
    result = _predict(setup, str(setup / "videos"), "--labels", str(setup / "labels.txt"), *arguments)
    assert result.exit_code == 2, result.output
    assert f"error: {message}" in result.stderr and "video(s)" not in result.stderr


def test_pretrained_with_a_checkpoint_whose_backbone_brings_its_weights_exits_2(setup):
    result = _predict(setup, str(setup / "videos"), "--labels", str(setup / "labels.txt"), "--pretrained", "w.pt")
    assert result.exit_code == 2, result.output
    stderr = " ".join(result.stderr.split())
    assert f"--pretrained cannot be combined with {setup / 'ckpt'}, whose backbone is local-dir:" in stderr
    assert "its weights come with it" in stderr


def test_a_torch_save_file_as_model_is_named_as_such(setup, tmp_path):
    torch.save({"a": torch.zeros(2)}, tmp_path / "weights.pt")
    result = runner.invoke(app, ["predict", str(setup / "videos"), "--labels", str(setup / "labels.txt"), "--model", str(tmp_path / "weights.pt")])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'weights.pt'}: a PyTorch pickle (torch.save), not a TorchScript export" in " ".join(result.stderr.split())


def test_failures_are_listed_in_argument_order(setup, tmp_path):
    broken = truncate(write_video(tmp_path / "broken.mp4", num_frames=16), 0.3)
    good, missing = setup / "videos" / "a.mp4", tmp_path / "missing.mp4"
    output = tmp_path / "out.json"
    result = _predict(setup, str(broken), str(good), str(missing), "--labels", str(setup / "labels.txt"), "--output", str(output))
    assert result.exit_code == 1, result.output
    reported = re.findall(r"failed: (\S+):", result.stderr)
    assert reported == [str(broken), str(missing)]
    assert [f["path"] for f in json.loads(output.read_text())["failures"]] == [str(broken), str(missing)]


def test_timeline_finds_the_scene_change(setup, tmp_path, tiny_backbone_name):
    """A merged export whose two classes are the model's own embeddings of a black and a
    white clip, on a video that turns from black to white at 4.5 s."""
    model = tiny_adapted_model(tiny_backbone_name)
    export_model(model, "merged", tmp_path / "darkbright.safetensors", SAMPLING, dark_bright_classes(model))
    video = write_two_scene_video(tmp_path / "scene.mp4")
    result = runner.invoke(app, [
        "predict", str(video), "--model", str(tmp_path / "darkbright.safetensors"), "--timeline",
        "--window", "2s", "--stride", "1s", "--timeline-dir", str(tmp_path / "timeline"), "--format", "csv",
    ])
    assert result.exit_code == 0, result.output
    segments = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(s["label"], s["start"], s["end"], s["first_window"]) for s in segments] == [
        ("dark", "0.000", "4.500", "0"), ("bright", "4.500", "8.000", "4")
    ]
    windows = list(csv.DictReader(io.StringIO((tmp_path / "timeline" / "scene.windows.csv").read_text())))
    assert [w["label_1"] for w in windows] == ["dark"] * 4 + ["bright"] * 3
    assert (tmp_path / "timeline" / "scene.png").stat().st_size > 1000


def test_timeline_without_matplotlib_names_the_extra_before_any_work(setup, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    result = _predict(setup, str(setup / "videos"), "--labels", str(setup / "labels.txt"), "--timeline")
    assert result.exit_code == 1
    assert "the --timeline plot needs the Python package 'matplotlib'" in result.stderr and "pip install -e '.[plot]'" in result.stderr
    assert "video(s)" not in result.stderr  # failed before the model was loaded


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--output", "{file}/out.csv"], "is a file, not a folder"),
        (["--output", "/sys/out.csv"], "cannot write in /sys"),
        (["--output", "{folder}"], "is a folder; give a file name"),
        (["--timeline", "--timeline-dir", "{file}"], "is a file, not a folder"),
    ],
)
def test_an_output_that_cannot_be_written_exits_2_before_any_video_is_scored(tmp_path, arguments, message):
    file = tmp_path / "labels.txt"
    file.write_text("a\nb\n")
    arguments = [argument.format(file=file, folder=tmp_path) for argument in arguments]
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "videos"), "--labels", str(file), *arguments])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "video(s)" not in result.stderr


def test_export_to_a_path_under_a_file_exits_2_before_exporting(tmp_path):
    file = tmp_path / "labels.txt"
    file.write_text("a\n")
    result = CliRunner().invoke(app, ["export", str(tmp_path), "--format", "merged", "--out", f"{file}/m.safetensors"])
    assert result.exit_code == 2, result.output
    assert f"--out {file}/m.safetensors: {file} is a file, not a folder" in " ".join(result.stderr.split())


@pytest.fixture(scope="module")
def dense_runs(tmp_path_factory, tiny_backbone_name):
    """Two runs of one checkpoint on a test set of two 48-frame videos, evaluated with 2x1 views:
    one sampling dense clips (4 frames, 4 apart), the other TSN segments."""
    root = tmp_path_factory.mktemp("dense")
    data = root / "data"
    paths = [write_video(data / "videos" / f"{name}.mp4", num_frames=48).relative_to(data) for name in ("a", "b")]
    pd.DataFrame({"id": range(len(LABELS)), "name": LABELS}).to_csv(data / "labels.csv", index=False)
    pd.DataFrame({"path": [str(path) for path in paths], "label": [0, 1]}).to_csv(data / "test.csv", index=False)
    runs = {}
    for sampling in ("dense", "segment"):
        run = root / sampling
        write_checkpoint(run / "checkpoints" / "last", tiny_backbone_name)
        recipe = tiny_recipe(data, tiny_backbone_name, data={"sampling": sampling, "dense_stride": 4, "train_split": "test.csv"})
        write_recipe(run / "config.yaml", recipe)
        runs[sampling] = run
    return data, runs


def _predicted_scores(data: Path, run: Path) -> tuple[dict[str, list[float]], str]:
    result = runner.invoke(app, [
        "predict", str(data / "videos"), "--model", str(run), "--labels", str(data), "--views", "2x1",
        "--format", "json", "--device", "cpu", "--workers", "0",
    ])
    assert result.exit_code == 0, result.output
    scores = {Path(path).name: [p for _, p in top] for path, top in _from_json(result.stdout).items()}
    return scores, result.stderr


def test_a_dense_runs_predictions_are_the_scores_msta_evaluate_gives(dense_runs, tmp_path):
    data, runs = dense_runs
    result = runner.invoke(app, ["evaluate", str(runs["dense"]), "--output", str(tmp_path / "evaluated")])
    assert result.exit_code == 0, result.output
    (predictions,) = (tmp_path / "evaluated").rglob("predictions.csv")
    evaluated = {
        Path(row["path"]).name: [row[f"score{rank}"] for rank in range(1, len(LABELS) + 1)]
        for _, row in pd.read_csv(predictions).iterrows()
    }
    dense, header = _predicted_scores(data, runs["dense"])
    assert "4 frames (dense, stride 4), views 2x1" in header
    assert dense.keys() == evaluated.keys() == {"a.mp4", "b.mp4"}
    for name, scores in evaluated.items():
        assert dense[name] == pytest.approx(scores, abs=1e-5)  # predictions.csv rounds to 5 decimals
    segment, header = _predicted_scores(data, runs["segment"])
    assert "4 frames, views 2x1" in header
    assert any(segment[name] != pytest.approx(dense[name], abs=1e-4) for name in dense)  # other frames, other scores
