import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from msta_cli.cli import app
from msta_cli.commands import launcher
from msta_cli.core.checkpoint import save_adapter
from msta_cli.core.config import load_config
from msta_cli.core.model import create_model, gflops_per_view
from msta_cli.core.prepare.writer import PENDING
from tests.helpers.datasets import tiny_recipe, write_recipe

runner = CliRunner()


@pytest.fixture
def seven_video_recipe(tmp_path, colour_dataset, tiny_backbone_name):
    """A test set of 7 videos (not a multiple of 2 processes) and a recipe evaluating it."""
    pd.read_csv(colour_dataset / "test.csv").iloc[:7].to_csv(tmp_path / "test7.csv", index=False)
    sets = [{"name": "seven", "split": str(tmp_path / "test7.csv"), "labels": "labels.csv"}]
    return write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, eval={"sets": sets, "views": "2x3"}))


@pytest.fixture
def checkpoint(tmp_path, tiny_model):
    with torch.no_grad():
        for parameter in tiny_model.adapters.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return save_adapter(tiny_model, tmp_path / "adapter")


def test_two_processes_give_the_same_numbers_and_count_each_video_once(tmp_path, seven_video_recipe, checkpoint):
    single = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", seven_video_recipe, "--output", str(tmp_path / "one")])
    assert single.exit_code == 0, single.output
    command = [sys.executable, "-m", "msta_cli", "evaluate", str(checkpoint), "--recipe", seven_video_recipe, "--output", str(tmp_path / "two"), "--nproc", "2"]
    distributed = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert distributed.returncode == 0, distributed.stderr[-3000:]
    one = pd.read_csv(tmp_path / "one" / "seven_predictions.csv")
    two = pd.read_csv(tmp_path / "two" / "seven_predictions.csv")
    assert len(two) == 7 and two["path"].is_unique
    pd.testing.assert_frame_equal(one, two, atol=1e-4, check_exact=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one" / "results.csv"), pd.read_csv(tmp_path / "two" / "results.csv"))


def test_nproc_passes_every_option_to_the_processes_and_fixes_the_output_folder(tmp_path, seven_video_recipe, checkpoint, monkeypatch):
    launched = []
    monkeypatch.setattr(launcher, "torchrun", lambda arguments: launched.append(arguments) or 3)
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", seven_video_recipe, "--split", "seven", "--views", "1x1",
                                 "--set", "eval.batch_size=2", "--nproc", "2"])
    assert result.exit_code == 3  # the processes' exit code
    arguments = launched[0]
    assert arguments[:5] == ["--standalone", "--nproc-per-node=2", "-m", "msta_cli", "evaluate"]
    output = next(argument for argument in arguments if argument.startswith("--output="))
    assert output.startswith(f"--output={tmp_path / 'adapter-evaluate-'}")  # chosen here, once, for every process
    assert arguments[5:-1] == [str(checkpoint), "--recipe", seven_video_recipe, "--split=seven", "--views=1x1", "--set=eval.batch_size=2"]
    assert "--nproc" not in arguments[5:]
    bad = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", seven_video_recipe, "--views", "2x", "--nproc", "2"])
    assert bad.exit_code == 2 and len(launched) == 1  # input checked before any process starts


def test_without_a_checkpoint_it_evaluates_zero_shot_clip(tmp_path, seven_video_recipe):
    arguments = ["evaluate", "--recipe", seven_video_recipe, "--output", str(tmp_path / "zs"), "--views", "1x1"]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    results = pd.read_csv(tmp_path / "zs" / "results.csv")
    assert results[["method", "views", "videos", "trainable"]].values.tolist() == [["zero-shot", "1x1", 7, 0]]
    config = load_config(seven_video_recipe)
    zero_shot = create_model(config, adapters=False).eval()
    gflops = gflops_per_view(zero_shot, config.data.num_frames, config.data.input_size)
    assert results["gflops_per_view"].iloc[0] == pytest.approx(gflops, rel=1e-3) and gflops > 0
    protocol = pd.read_csv(tmp_path / "zs" / "protocol.csv")  # the printed table: the cost beside the accuracy
    assert protocol[["views", "gflops_per_view", "trainable"]].values.tolist() == [["1x1", results["gflops_per_view"].iloc[0], 0]]


def test_unreadable_test_videos_are_listed_and_counted(tmp_path, colour_dataset, tiny_backbone_name, checkpoint):
    rows = pd.read_csv(colour_dataset / "test.csv").iloc[:3]
    pd.concat([rows, pd.DataFrame({"path": ["gone.mp4"], "label": [0]})]).to_csv(tmp_path / "t.csv", index=False)
    sets = [{"name": "test", "split": str(tmp_path / "t.csv"), "labels": "labels.csv"}]
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, eval={"sets": sets}))
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", recipe, "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "out" / "results.csv").iloc[0]
    assert (summary["videos"], summary["scored"], summary["failed"]) == (4, 3, 1)
    assert pd.read_csv(tmp_path / "out" / "eval_problems.csv")["path"].tolist() == ["gone.mp4"]
    assert "test: 1 of 4 test videos could not be read; top-1 and the other accuracies are over the 3 scored" in result.output
    assert f"each failure is listed in {tmp_path / 'out' / 'eval_problems.csv'}" in result.output


def test_evaluating_again_after_the_data_is_fixed_leaves_no_stale_failure_list(tmp_path, colour_dataset, tiny_backbone_name, checkpoint):
    rows = pd.read_csv(colour_dataset / "test.csv").iloc[:2]
    broken = pd.concat([rows, pd.DataFrame({"path": ["gone.mp4"], "label": [0]})])
    for name, split in (("broken", broken), ("fixed", rows)):
        split.to_csv(tmp_path / "t.csv", index=False)
        sets = [{"name": "test", "split": str(tmp_path / "t.csv"), "labels": "labels.csv"}]
        recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, eval={"sets": sets}))
        result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", recipe, "--output", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "out" / "eval_problems.csv").exists() == (name == "broken")


@pytest.fixture
def without_dataset_yaml(tmp_path, colour_dataset):
    """The colour dataset without its dataset.yaml: the folder itself is taken as the video root, but
    its lists name videos relative to videos/, so not one of them is found."""
    data = tmp_path / "data"
    shutil.copytree(colour_dataset, data)
    (data / "dataset.yaml").unlink()
    return data


@pytest.mark.parametrize("zero_shot", [False, True])
def test_a_set_of_which_no_video_could_be_scored_exits_1_after_its_results_are_written(
    tmp_path, colour_dataset, tiny_backbone_name, checkpoint, without_dataset_yaml, zero_shot
):
    sets = [
        {"name": "test", "split": "test.csv", "labels": "labels.csv"},
        {"name": "moved", "split": "test.csv", "labels": "labels.csv", "root": str(without_dataset_yaml)},
    ]
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, eval={"sets": sets}))
    output = tmp_path / "out"
    target = [] if zero_shot else [str(checkpoint)]
    result = runner.invoke(app, ["evaluate", *target, "--recipe", recipe, "--output", str(output)])
    assert result.exit_code == 1, result.output
    files = output / "zero-shot" if zero_shot else output
    assert (
        f"test set moved: no video could be scored (9 failed, e.g. {without_dataset_yaml / 'red/test_0.mp4'}: file not found); "
        f"every failure is in {files / 'moved_eval_problems.csv'}"
    ) in " ".join(result.stderr.split())
    assert "test set test" not in result.stderr
    results = pd.read_csv(output / "results.csv")
    assert results[["split", "scored", "failed"]].values.tolist() == [["test", 9, 0], ["moved", 0, 9]]
    assert len(pd.read_csv(files / "moved_eval_problems.csv")) == 9
    assert "moved" in result.stdout  # the table is printed first


def test_a_folder_msta_prepare_has_not_finished_exits_2_before_anything_is_evaluated(
    tmp_path, colour_dataset, tiny_backbone_name, checkpoint, without_dataset_yaml
):
    (without_dataset_yaml / PENDING).write_text("files: [labels.csv, test.csv, train.csv]\n")
    sets = [
        {"name": "test", "split": "test.csv", "labels": "labels.csv"},
        {"name": "unfinished", "split": "test.csv", "labels": "labels.csv", "root": str(without_dataset_yaml)},
    ]
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, eval={"sets": sets}))
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", recipe, "--output", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"{without_dataset_yaml}: msta prepare has not finished writing this folder" in " ".join(result.stderr.split())
    assert not (tmp_path / "out").exists()


def test_a_test_set_listing_a_video_twice_exits_2_before_anything_is_evaluated(
    tmp_path, colour_dataset, tiny_backbone_name, checkpoint
):
    rows = pd.read_csv(colour_dataset / "test.csv")
    pd.concat([rows, rows.iloc[[0]]]).to_csv(tmp_path / "t.csv", index=False)
    sets = [
        {"name": "test", "split": "test.csv", "labels": "labels.csv"},
        {"name": "twice", "split": str(tmp_path / "t.csv"), "labels": "labels.csv"},
    ]
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, eval={"sets": sets}))
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", recipe, "--output", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"lines 2, {len(rows) + 2}: video '{rows['path'][0]}' is listed 2 times" in " ".join(result.stderr.split())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nowhere"], "nowhere: not found"),
        ([], "--recipe is needed"),
        (["--split", "nope"], "--split nope: not a test set"),
        (["--views", "3x2"], "'--views' must be CLIPSxCROPS"),
    ],
)
def test_bad_arguments_exit_2(seven_video_recipe, arguments, message):
    recipe = ["--recipe", seven_video_recipe] if arguments and arguments[0].startswith("--") else []
    result = runner.invoke(app, ["evaluate", *arguments, *recipe])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_views_overrides_the_views_a_test_set_sets_itself(tmp_path, colour_dataset, tiny_backbone_name, checkpoint):
    sets = [{"name": "test", "split": "test.csv", "labels": "labels.csv", "views": "2x3"}]
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, eval={"sets": sets}))
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", recipe, "--views", "1x1", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "out" / "results.csv")["views"].tolist() == ["1x1"]


@pytest.fixture
def run_with_checkpoint(tmp_path, colour_dataset, tiny_backbone_name, tiny_model):
    """A run folder as msta train leaves it: config.yaml and checkpoints/last."""
    run = tmp_path / "run"
    run.mkdir()
    write_recipe(run / "config.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, adapter={"scale": 0.5}))
    save_adapter(tiny_model, run / "checkpoints" / "last")
    return run


def test_a_checkpoint_in_a_run_uses_the_runs_config_and_writes_beside_the_run(run_with_checkpoint, monkeypatch):
    monkeypatch.chdir(run_with_checkpoint.parent)
    result = runner.invoke(app, ["evaluate", "run/checkpoints/last"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (run_with_checkpoint / "checkpoints" / "last").iterdir()) == ["adapter.safetensors", "adapter_config.json"]
    (output,) = run_with_checkpoint.glob("evaluate-*")
    assert (output / "results.csv").is_file()


def test_a_stand_alone_checkpoint_writes_beside_its_folder(tmp_path, seven_video_recipe, checkpoint):
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", seven_video_recipe])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in checkpoint.iterdir()) == ["adapter.safetensors", "adapter_config.json"]
    (output,) = tmp_path.glob("adapter-evaluate-*")
    assert (output / "results.csv").is_file()


def test_a_checkpoint_of_another_backbone_exits_2_naming_both(tmp_path, seven_video_recipe, checkpoint, tiny_backbone_name):
    other = f"local-dir:{tmp_path}"
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", seven_video_recipe, "--set", f"model.backbone={other}"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert tiny_backbone_name in message and other in message


def test_recipe_keys_the_checkpoint_replaces_are_named(tmp_path, seven_video_recipe, checkpoint):
    arguments = ["--set", "adapter.scale=0.5", "--set", "adapter.bottleneck=4", "--output", str(tmp_path / "out")]
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", seven_video_recipe, *arguments])
    assert result.exit_code == 0, result.output
    note = next(line for line in result.stderr.splitlines() if line.startswith("using the checkpoint's"))
    assert "adapter.bottleneck" in note and "adapter.scale" not in note


def test_a_moved_data_folder_suggests_setting_data_root(run_with_checkpoint, tmp_path):
    moved = tmp_path / "moved"
    result = runner.invoke(app, ["evaluate", str(run_with_checkpoint), "--set", f"data.root={moved}"])
    assert result.exit_code == 2, result.output
    assert f"data.root {moved}: folder not found" in result.stderr and "--set data.root=" in result.stderr


def test_an_output_that_cannot_be_written_exits_2_before_anything_is_scored(tmp_path, seven_video_recipe, checkpoint):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", seven_video_recipe, "--output", str(blocker / "out")])
    assert result.exit_code == 2, result.output
    assert f"--output {blocker / 'out'}: {blocker} is a file, not a folder" in " ".join(result.stderr.split())
    assert "evaluating" not in result.output


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_unreadable_adapter_weights_exit_2_before_the_zero_shot_row_is_scored(tmp_path, seven_video_recipe, checkpoint, damage):
    weights = checkpoint / "adapter.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        weights.unlink()
    output = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--recipe", seven_video_recipe, "--output", str(output)])
    assert result.exit_code == 2, result.output
    assert f"{weights}: cannot read adapter weights" in " ".join(result.stderr.split())
    assert "evaluating" not in result.output and not output.exists()


def test_an_export_file_is_refused_saying_what_evaluate_takes(tmp_path, seven_video_recipe):
    export = tmp_path / "model.safetensors"
    export.write_bytes(b"")
    result = runner.invoke(app, ["evaluate", str(export)])  # no --recipe: the message must not ask for one
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "a file; msta evaluate takes a run directory or an adapter checkpoint folder" in message
    assert "exports are for msta predict" in message and "--recipe" not in message
