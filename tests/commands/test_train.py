import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure
from typer.testing import CliRunner

from msta_cli.cli import app
from msta_cli.commands import launcher
from msta_cli.core.data import dataset, decoding
from msta_cli.core.training import run_directory, trainer
from msta_cli.core.data.dataset import VideoClipDataset
from msta_cli.core.data.sharding import ShardedSampler
from tests.helpers.datasets import tiny_recipe, write_base_to_novel_lists, write_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
runner = CliRunner()


def _recipe(tmp_path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


# GFLOPs per view, 8x224: ViT-B/16's 8 x 17.563 plus the adapters' multiply-adds on 8 x 197 tokens
# (r = 128 on 5 blocks: 1.697; r = 256 on 12 blocks: 8.720)
@pytest.mark.parametrize(
    ("recipe", "trainable", "gflops"), [("fewshot.yaml", 1_744_000, 142.204), ("base2novel.yaml", 8_712_192, 149.227)]
)
def test_dry_run_json_of_shipped_recipes_has_the_exact_counts(recipe, trainable, gflops):
    result = runner.invoke(app, ["train", str(RECIPES / recipe), "model.pretrained=none", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    parameters = payload["parameters"]
    assert parameters["trainable"] == trainable
    assert parameters["trainable_percent"] == pytest.approx(100 * trainable / parameters["total"], abs=1e-3)
    assert parameters["trainable_percent_of_backbone"] == pytest.approx(100 * trainable / parameters["backbone"], abs=1e-3)
    assert payload["gflops_per_view"] == pytest.approx(gflops, abs=1e-3)
    assert payload["config"]["model"]["pretrained"] == "none"
    assert payload["preprocessing"]["size"] == 224


def test_dry_run_table_shows_config_and_parameter_split(tmp_path, tiny_backbone_name):
    recipe = _recipe(tmp_path, f"model:\n  backbone: {tiny_backbone_name}\nadapter:\n  bottleneck: 16\n  blocks: [2, 2]\n")
    result = runner.invoke(app, ["train", recipe, "data.input_size=32", "loss.consistency_weight=0", "--dry-run"], terminal_width=120)
    assert result.exit_code == 0, result.output
    per_block = 64 * 16 + 16 + 16 * 64 + 64 + 16 * 16 + 16 + 64 * 16 + 16 + 16 * 64 + 64 + 3 * 64 + 64
    assert f"{per_block:,}" in result.stdout
    for part in ("text_down", "shared", "temporal_up", "trainable", "frozen backbone", "share of backbone", "GFLOPs per view", "bottleneck: 16"):
        assert part in result.stdout


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("adapter:\n  blocks: [1, 2\n", [], "invalid YAML"),
        ("adapter:\n  botleneck: 8\n", [], "unknown key 'adapter.botleneck'"),
        ("adapter:\n  bottleneck: eight\n", [], "'adapter.bottleneck' must be an integer"),
        ("", ["adapter.scale=big"], "'adapter.scale' must be a number"),
    ],
)
def test_bad_recipes_exit_2_with_a_message_and_no_traceback(tmp_path, text, overrides, message):
    result = runner.invoke(app, ["train", _recipe(tmp_path, text), *overrides, "--dry-run"])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_two_epoch_run_learns_and_leaves_a_complete_run_directory(tmp_path, colour_dataset, tiny_backbone_name):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, eval={"zero_shot_baseline": True}))
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", recipe, f"output_dir={run_dir}", "optim.micro_batch_size=1"])
    assert result.exit_code == 0, result.output
    assert "normalised with the backbone's mean (0.5, 0.4, 0.3) std (0.2, 0.25, 0.3)" in " ".join(result.stderr.split())
    metrics = pd.read_csv(run_dir / "metrics.csv")
    epochs = metrics[metrics["kind"] == "epoch"].set_index("epoch")["loss"]
    assert epochs.index.tolist() == [0, 1] and epochs[1] < epochs[0], epochs
    assert epochs[0] == pytest.approx(metrics.query("kind == 'step' and epoch == 0")["loss"].mean(), abs=1e-5)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["optim"]["micro_batch_size"] == 1
    environment = json.loads((run_dir / "env.json").read_text())
    assert environment["world_size"] == 1 and environment["torch"]
    for name in ("adapter.safetensors", "adapter_config.json", "training_state.pt"):
        assert (run_dir / "checkpoints" / "last" / name).is_file()
    results = pd.read_csv(run_dir / "results.csv")
    assert results["method"].tolist() == ["zero-shot", "MSTA"] and (results["videos"] == 9).all()
    assert results.loc[1, "trainable"] > 0 and results.loc[0, "trainable"] == 0
    assert len(pd.read_csv(run_dir / "predictions.csv")) == 9
    assert pd.read_csv(run_dir / "per_class.csv")["videos"].sum() == 9
    assert pd.read_csv(run_dir / "confusion.csv").shape == (3, 4)
    assert pd.read_csv(run_dir / "problems.csv").empty
    assert (run_dir / "zero-shot" / "predictions.csv").is_file()
    again = runner.invoke(app, ["train", recipe, f"output_dir={run_dir}"])
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_base_to_novel_protocol_runs_every_seed_and_reports_hm(tmp_path, colour_dataset, tiny_backbone_name):
    dataset = tmp_path / "b2n"
    shutil.copytree(colour_dataset, dataset)
    write_base_to_novel_lists(dataset, base=[1, 2], novel=[0], seeds=(1, 2))
    recipe = tiny_recipe(
        dataset, tiny_backbone_name,
        data={"train_split": "base2novel/train_s{seed}.csv", "train_labels": "base2novel/base_labels.csv"},
        eval={"zero_shot_baseline": True, "sets": [
            {"name": "base", "split": "base2novel/base_test.csv", "labels": "base2novel/base_labels.csv"},
            {"name": "novel", "split": "base2novel/novel_test.csv", "labels": "base2novel/novel_labels.csv"},
        ]},
        protocol={"kind": "base2novel", "seeds": [1, 2]}, optim={"epochs": 1},
    )
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", write_recipe(tmp_path / "r.yaml", recipe), f"output_dir={run_dir}"], terminal_width=150)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(run_dir / "protocol.csv", keep_default_na=False)
    assert table[["method", "run"]].values.tolist() == [["zero-shot", "-"], ["MSTA", "seed1"], ["MSTA", "seed2"], ["MSTA", "mean"]]
    mean = table[table["run"] == "mean"].iloc[0]
    assert mean["HM"] == pytest.approx(2 * mean["base"] * mean["novel"] / (mean["base"] + mean["novel"]), abs=0.01)
    assert (run_dir / "seed1" / "results.csv").is_file() and (run_dir / "seed2" / "novel_predictions.csv").is_file()
    assert "HM" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"train_split": "missing.csv"}}, "missing.csv: file not found"),
        ({"data": {"train_split": "bad_labels.csv"}}, "bad_labels.csv: line 2: label '7' is not a class id"),
        ({"data": {"train_split": "empty.csv"}}, "empty.csv: no rows after the header"),
        ({"eval": {"sets": [{"name": "t", "split": "nope.csv", "labels": "labels.csv"}]}}, "nope.csv: file not found"),
        ({"loss": {"consistency_weight": 1.0}}, "loss.descriptions: set either `file`"),
        ({"optim": {"batch_size": 4, "micro_batch_size": 3}}, "optim.batch_size 4 is not a multiple of micro_batch_size 3 x 1 processes"),
    ],
)
def test_bad_inputs_exit_2_naming_the_file_and_write_nothing(tmp_path, colour_dataset, tiny_backbone_name, change, message):
    dataset = tmp_path / "data"
    shutil.copytree(colour_dataset, dataset)
    (dataset / "bad_labels.csv").write_text("path,label\nred/train_0.mp4,7\n")
    (dataset / "empty.csv").write_text("path,label\n")
    run_dir = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(dataset, tiny_backbone_name, **change))
    result = runner.invoke(app, ["train", recipe, f"output_dir={run_dir}"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert not run_dir.exists() and "run directory" not in result.output


def test_resume_continues_a_finished_run_without_retraining(tmp_path, colour_dataset, tiny_backbone_name):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, optim={"epochs": 1}))
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", recipe, f"output_dir={run_dir}"]).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "optim.epochs=2"])
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["epoch"].max() == 1 and metrics["step"].is_monotonic_increasing
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["optim"]["epochs"] == 2  # what it trained
    assert runner.invoke(app, ["train", "--resume", str(tmp_path / "nowhere")]).exit_code == 2


@pytest.mark.skipif(not decoding.decord_available(), reason="decord is not installed")
def test_the_recipe_picks_the_video_backend_and_dense_stride_of_training_and_evaluation(tmp_path, colour_dataset, tiny_backbone_name, monkeypatch):
    backends, spacings = set(), set()
    open_video, frame_indices = dataset.open_video, VideoClipDataset.frame_indices

    def spy_open(path, backend, *args):
        backends.add(backend)
        return open_video(path, backend, *args)

    def spy_indices(self, video_frames, index):
        clips = frame_indices(self, video_frames, index)
        spacings.update((self.mode, b - a) for clip in clips for a, b in zip(clip, clip[1:]))
        return clips

    monkeypatch.setattr(dataset, "open_video", spy_open)
    monkeypatch.setattr(VideoClipDataset, "frame_indices", spy_indices)
    data = {"sampling": "dense", "dense_stride": 2, "video_backend": "decord"}  # 12-frame videos fit 4 frames 2 apart
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, data=data, optim={"epochs": 1}))
    result = runner.invoke(app, ["train", recipe, f"output_dir={tmp_path / 'run'}"])
    assert result.exit_code == 0, result.output
    assert backends == {"decord"}
    assert spacings == {("train", 2), ("test", 2)}


def test_an_uninstalled_video_backend_exits_2_before_writing(tmp_path, colour_dataset, tiny_backbone_name, monkeypatch):
    monkeypatch.setattr(decoding, "decord_available", lambda: False)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, data={"video_backend": "decord"}))
    result = runner.invoke(app, ["train", recipe, f"output_dir={tmp_path / 'run'}"])
    assert result.exit_code == 2 and "video backend 'decord' is not installed" in result.stderr
    assert not (tmp_path / "run").exists()


def test_videos_moved_away_from_the_recorded_video_root_exit_2_before_writing(tmp_path, colour_dataset, tiny_backbone_name):
    data = tmp_path / "data"
    shutil.copytree(colour_dataset, data, ignore=shutil.ignore_patterns("videos"))
    (data / "dataset.yaml").write_text(f"name: colours\nvideo_root: {tmp_path / 'gone'}\n")
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(data, tiny_backbone_name))
    result = runner.invoke(app, ["train", recipe, f"output_dir={tmp_path / 'run'}"])
    assert result.exit_code == 2 and f"video_root {tmp_path / 'gone'} is not a folder" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_test_set_of_which_no_video_could_be_scored_fails_the_run_after_its_results_are_written(
    tmp_path, colour_dataset, tiny_backbone_name
):
    data = tmp_path / "data"
    shutil.copytree(colour_dataset, data)
    (data / "dataset.yaml").unlink()  # the folder itself is taken as the video root; the lists name videos/...
    sets = [{"name": "moved", "split": "test.csv", "labels": "labels.csv", "root": str(data)}]
    recipe = tiny_recipe(colour_dataset, tiny_backbone_name, eval={"zero_shot_baseline": True, "sets": sets}, optim={"epochs": 1})
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", write_recipe(tmp_path / "r.yaml", recipe), f"output_dir={run_dir}"])
    assert result.exit_code == 1, result.output
    assert (
        f"test set moved: no video could be scored (9 failed, e.g. {data / 'red/test_0.mp4'}: file not found); "
        f"every failure is in {run_dir / 'zero-shot' / 'moved_eval_problems.csv'}"
    ) in " ".join(result.stderr.split())
    results = pd.read_csv(run_dir / "results.csv")
    assert results[["method", "scored", "failed"]].values.tolist() == [["zero-shot", 0, 9], ["MSTA", 0, 9]]
    assert (run_dir / "checkpoints" / "last" / "adapter.safetensors").is_file()  # evaluate it once the data is fixed


def test_resume_evaluates_again_a_finished_run_whose_test_set_could_not_be_scored(
    tmp_path, colour_dataset, tiny_backbone_name
):
    data = tmp_path / "data"
    shutil.copytree(colour_dataset, data)
    test_list = pd.read_csv(data / "test.csv")
    test_list.assign(path="moved/" + test_list["path"]).to_csv(data / "test.csv", index=False)  # videos not there
    sets = [{"name": name, "split": "test.csv", "labels": "labels.csv"} for name in ("base", "novel")]
    recipe = tiny_recipe(data, tiny_backbone_name, protocol={"kind": "base2novel", "seeds": [1]}, optim={"epochs": 1},
                         eval={"sets": sets})
    recipe_path, run_dir = write_recipe(tmp_path / "r.yaml", recipe), tmp_path / "run"
    assert runner.invoke(app, ["train", recipe_path, f"output_dir={run_dir}"]).exit_code == 1
    trained = (run_dir / "seed1" / "checkpoints" / "last" / "adapter.safetensors").read_bytes()
    test_list.to_csv(data / "test.csv", index=False)  # the data fixed
    result = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(run_dir / "results.csv")["scored"].tolist() == [len(test_list)] * 2
    assert (run_dir / "seed1" / "checkpoints" / "last" / "adapter.safetensors").read_bytes() == trained  # not retrained


def test_a_base_to_novel_recipe_without_base_and_novel_sets_exits_2_before_training(
    tmp_path, colour_dataset, tiny_backbone_name
):
    recipe = tiny_recipe(colour_dataset, tiny_backbone_name, protocol={"kind": "base2novel", "seeds": [1]})
    result = runner.invoke(app, ["train", write_recipe(tmp_path / "r.yaml", recipe), f"output_dir={tmp_path / 'run'}"])
    assert result.exit_code == 2, result.output
    assert "eval.sets needs sets named base and novel (this recipe has test)" in " ".join(result.stderr.split())
    assert not (tmp_path / "run").exists()


def test_module_entry_point_lists_commands():
    result = subprocess.run([sys.executable, "-m", "msta_cli", "--help"], capture_output=True, text=True, check=True)
    assert "train" in result.stdout and "evaluate" in result.stdout


@pytest.mark.parametrize("selection", ["best-on-val", "best-on-test"])
def test_best_checkpoint_selection_is_kept_and_labelled(tmp_path, colour_dataset, tiny_backbone_name, selection):
    recipe = tiny_recipe(colour_dataset, tiny_backbone_name, eval={"model_selection": selection, "val_fraction": 0.2}, optim={"epochs": 2})
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", write_recipe(tmp_path / "r.yaml", recipe), f"output_dir={run_dir}"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "checkpoints" / "best" / "adapter.safetensors").is_file()
    metrics = pd.read_csv(run_dir / "metrics.csv")
    evaluations = metrics.query("kind == 'eval'")
    # numbered from 0, as the epoch rows: each evaluation sits beside the epoch it scored
    assert evaluations["epoch"].tolist() == metrics.query("kind == 'epoch'")["epoch"].tolist() == [0, 1]
    assert evaluations["split"].unique().tolist() == (["val"] if selection == "best-on-val" else ["test"])
    label = pd.read_csv(run_dir / "results.csv")["selection"].iloc[-1]
    assert ("optimistic" in label) == (selection == "best-on-test")
    best = json.loads((run_dir / "checkpoints" / "best" / "adapter_config.json").read_text())
    assert best["selection"] == selection and best["epoch"] in (0, 1)
    best_row = evaluations.loc[evaluations["top1"].idxmax()]
    assert best["epoch"] == best_row["epoch"]
    assert f"epoch {best_row['epoch']}: {best_row['split']} top-1" in result.output
    # the label comes from the checkpoint scored, not from the recipe evaluating it
    relabelled = runner.invoke(app, ["evaluate", str(run_dir), "--set", "eval.model_selection=last", "--output", str(tmp_path / "e1")])
    assert relabelled.exit_code == 0, relabelled.output
    assert pd.read_csv(tmp_path / "e1" / "results.csv")["selection"].iloc[-1] == label
    last = runner.invoke(app, ["evaluate", str(run_dir / "checkpoints" / "last"), "--output", str(tmp_path / "e2")])
    assert last.exit_code == 0, last.output
    assert pd.read_csv(tmp_path / "e2" / "results.csv")["selection"].iloc[-1] == "last"
    if selection == "best-on-val":
        held_out = pd.read_csv(run_dir / "validation.csv")
        assert len(held_out) == 3 and set(held_out["path"]).isdisjoint(pd.read_csv(colour_dataset / "test.csv")["path"])


def test_bf16_autocast_and_activation_checkpointing_run(tmp_path, colour_dataset, tiny_backbone_name):
    recipe = tiny_recipe(colour_dataset, tiny_backbone_name, optim={"epochs": 1, "precision": "bf16"}, run={"activation_checkpointing": True})
    result = runner.invoke(app, ["train", write_recipe(tmp_path / "r.yaml", recipe), f"output_dir={tmp_path / 'run'}"])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "run" / "metrics.csv")["loss"].notna().all()


def test_nproc_starts_torchrun_with_gloo_and_two_processes(tmp_path, colour_dataset, tiny_backbone_name):
    """Bad videos in micro-batches of one: each rank has steps without a video, in which it must
    still take part in DDP's gradient all-reduce; one rank has more of them than the other, so
    a rank that skipped would leave the other waiting forever."""
    good = iter(pd.read_csv(colour_dataset / "train.csv").itertuples(index=False))
    bad = {5: "red/missing_a.mp4", 16: "red/missing_b.mp4", 19: "red/missing_c.mp4"}
    split = pd.DataFrame([(bad[i], 0) if i in bad else next(good) for i in range(20)], columns=["path", "label"])
    shards = [ShardedSampler(len(split), rank, 2, seed=0).shard() for rank in (0, 1)]
    bad_steps = [[step for step, index in enumerate(shard, 1) if index in bad] for shard in shards]
    assert [len(steps) for steps in bad_steps] == [1, 2]
    split.to_csv(tmp_path / "train.csv", index=False)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(
        colour_dataset, tiny_backbone_name, data={"train_split": str(tmp_path / "train.csv")},
        optim={"epochs": 1, "batch_size": 2, "micro_batch_size": 1},
    ))
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "msta_cli", "train", recipe, f"output_dir={run_dir}", "--nproc", "2"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "epoch 0: 3 training video(s) could not be read so far; training goes on without them" in finished.stderr
    assert json.loads((run_dir / "env.json").read_text())["world_size"] == 2
    metrics = pd.read_csv(run_dir / "metrics.csv")
    # 20 videos / (micro 1 x 2 processes), accumulation 1; logged: every step in which some process read a video
    assert metrics.query("kind == 'step'")["step"].tolist() == [step for step in range(1, 11) if not (step in bad_steps[0] and step in bad_steps[1])]
    assert pd.read_csv(run_dir / "results.csv")["videos"].tolist() == [9]
    assert pd.read_csv(run_dir / "problems.csv")["path"].tolist() == sorted(bad.values())  # gathered from both ranks


class _Killed(Exception):
    """Stands for a SIGKILL in an in-process run: nothing after it runs."""


def _metric_rows(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics.csv").drop(columns=["clips_per_s"])


def test_resume_after_a_kill_repeats_no_step_also_between_a_saves_renames_or_before_the_first_save(
    tmp_path, colour_dataset, tiny_backbone_name, monkeypatch
):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, run={"checkpoint_every_steps": 1}))
    straight = tmp_path / "straight"
    assert runner.invoke(app, ["train", recipe, f"output_dir={straight}"]).exit_code == 0
    save, append = trainer.save_training_checkpoint, run_directory.MetricsLog.append

    def save_then_die(directory, *args, **kwargs):
        save(directory, *args, **kwargs)
        if args[-2].global_step == 3:
            raise _Killed

    renamed = tmp_path / "renamed"  # killed after step 3's checkpoint, then as if between its two renames
    with monkeypatch.context() as patch:
        patch.setattr(trainer, "save_training_checkpoint", save_then_die)
        assert isinstance(runner.invoke(app, ["train", recipe, f"output_dir={renamed}"]).exception, _Killed)
    (renamed / "checkpoints" / "last").rename(renamed / "checkpoints" / ".last.old")

    def append_then_die(self, **row):
        append(self, **row)
        if row["step"] == 2:
            raise _Killed

    unsaved = tmp_path / "unsaved"  # killed at step 2, before any checkpoint
    with monkeypatch.context() as patch:
        patch.setattr(run_directory.MetricsLog, "append", append_then_die)
        result = runner.invoke(app, ["train", recipe, f"output_dir={unsaved}", "run.checkpoint_every_steps=0"])
        assert isinstance(result.exception, _Killed)
    assert _metric_rows(unsaved)["step"].tolist() == [1, 2] and not (unsaved / "checkpoints" / "last").exists()

    for run_dir in (renamed, unsaved):
        result = runner.invoke(app, ["train", "--resume", str(run_dir)])
        assert result.exit_code == 0, result.output
        pd.testing.assert_frame_equal(_metric_rows(straight), _metric_rows(run_dir))
        final = (straight / "checkpoints" / "last" / "adapter.safetensors").read_bytes()
        assert (run_dir / "checkpoints" / "last" / "adapter.safetensors").read_bytes() == final


def test_resume_refuses_another_process_count_and_changes_to_what_was_trained(
    tmp_path, colour_dataset, tiny_backbone_name, monkeypatch
):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name, optim={"epochs": 1}))
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", recipe, f"output_dir={run_dir}"]).exit_code == 0
    recorded = (run_dir / "config.yaml").read_text()
    launched = []
    monkeypatch.setattr(launcher, "torchrun", lambda arguments: launched.append(arguments) or 0)

    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--nproc", "2"])
    assert result.exit_code == 2 and not launched
    assert "made with 1 process(es) and must resume with 1 (without --nproc), not 2" in " ".join(result.stderr.split())

    result = runner.invoke(app, ["train", "--resume", str(run_dir), "adapter.bottleneck=8", "data.num_frames=2", "optim.epochs=3"])
    assert result.exit_code == 2
    assert "adapter.bottleneck, data.num_frames cannot change in a run that has started" in " ".join(result.stderr.split())
    assert (run_dir / "config.yaml").read_text() == recorded

    environment = json.loads((run_dir / "env.json").read_text())
    (run_dir / "env.json").write_text(json.dumps({**environment, "world_size": 2}))
    result = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 2 and "made with 2 process(es) and must resume with 2 (--nproc 2), not 1" in result.stderr
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "optim.epochs=3", "--nproc", "2"])
    assert result.exit_code == 0, result.output
    assert launched == [["--standalone", "--nproc-per-node=2", "-m", "msta_cli", "train", "--resume", str(run_dir), "optim.epochs=3"]]


def test_torchrun_gets_the_output_dir_once(tmp_path, colour_dataset, tiny_backbone_name, monkeypatch):
    launched = []
    monkeypatch.setattr(launcher, "torchrun", lambda arguments: launched.append(arguments) or 0)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name))
    result = runner.invoke(app, ["train", recipe, f"output_dir={tmp_path / 'run'}", "optim.lr=0.01", "--nproc", "2"])
    assert result.exit_code == 0, result.output
    assert launched[0][-3:] == [recipe, "optim.lr=0.01", f"output_dir={tmp_path / 'run'}"]
    assert sum(argument.startswith("output_dir=") for argument in launched[0]) == 1


def _failed(**exit_codes: int) -> ChildFailedError:
    """torchrun's report of processes that stopped, rank 1 first: {"rank0": 1, "rank1": -9}."""
    failures = {int(name[4:]): ProcessFailure(int(name[4:]), 100 + n, code, "/nonexistent") for n, (name, code) in enumerate(exit_codes.items())}
    for rank, failure in failures.items():
        failure.timestamp = 10 if rank == 1 else 20
    return ChildFailedError("msta_cli", failures)


@pytest.mark.parametrize(
    ("stop", "code", "lines"),
    [
        (_failed(rank0=1, rank1=-9), 1, ["process 1 stopped first (killed by SIGKILL); its error is above"]),
        (_failed(rank1=1), 1, ["process 1 stopped first (exit code 1); its error is above"]),
        (_failed(rank0=1), 1, []),  # rank 0's own error: it printed it
        (SignalException("interrupted", signal.SIGINT), 1, ["stopped by SIGINT"]),
        (_failed(rank0=2), 2, None),  # an input error rank 0 printed: no resume hint
    ],
)
def test_a_process_that_stops_the_run_is_named_with_the_command_that_continues_it(
    tmp_path, colour_dataset, tiny_backbone_name, monkeypatch, stop, code, lines
):
    def fail(arguments):
        raise stop

    monkeypatch.setattr(launcher, "run", fail)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name))
    result = runner.invoke(app, ["train", recipe, f"output_dir={tmp_path / 'run'}", "--nproc", "2"])
    assert result.exit_code == code
    message = " ".join(result.stderr.split())
    hint = f"continue it with: msta train --resume {tmp_path / 'run'} --nproc 2"
    assert (hint in message) == (lines is not None)
    for line in lines or []:
        assert line in message
    if lines == []:
        assert "stopped first" not in message


def test_resume_with_more_epochs_trains_a_finished_protocol_run_further(tmp_path, colour_dataset, tiny_backbone_name):
    sets = [{"name": name, "split": "test.csv", "labels": "labels.csv"} for name in ("base", "novel")]
    recipe = tiny_recipe(colour_dataset, tiny_backbone_name, protocol={"kind": "base2novel", "seeds": [1]}, optim={"epochs": 1},
                         eval={"sets": sets})
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", write_recipe(tmp_path / "r.yaml", recipe), f"output_dir={run_dir}"]).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "optim.epochs=2"])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(run_dir / "seed1" / "metrics.csv").query("kind == 'epoch'")["epoch"].tolist() == [0, 1]
    fewer = runner.invoke(app, ["train", "--resume", str(run_dir), "optim.epochs=1"])
    assert fewer.exit_code == 2 and "optim.epochs can only grow on a resume (the run is set to 2, given 1)" in " ".join(fewer.stderr.split())
    assert yaml.safe_load((run_dir / "seed1" / "config.yaml").read_text())["optim"]["epochs"] == 2
    # a hand-edited top-level config.yaml: each run's own config.yaml records what it trained with
    edited = yaml.safe_load((run_dir / "config.yaml").read_text())
    edited["optim"]["lr"] = 0.5
    (run_dir / "config.yaml").write_text(yaml.safe_dump(edited))
    result = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 2
    assert f"--resume {run_dir / 'seed1'}: optim.lr cannot change in a run that has started" in " ".join(result.stderr.split())
    for config in (run_dir / "config.yaml", run_dir / "seed1" / "config.yaml"):
        assert yaml.safe_load(config.read_text())["optim"]["epochs"] == 2
    # one run of the protocol, resumed on its own, would start a protocol of its own from step 0
    result = runner.invoke(app, ["train", "--resume", str(run_dir / "seed1")])
    assert result.exit_code == 2 and not (run_dir / "seed1" / "seed1").exists()
    assert f"this is run seed1 of the protocol run {run_dir}; resume that: msta train --resume {run_dir}" in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["data.train_split=nonexist.csv", "--nproc", "2"], "nonexist.csv: file not found"),
        (["optim.micro_batch_size=4", "--nproc", "2"], "optim.batch_size 4 is not a multiple of micro_batch_size 4 x 2 processes; e.g. optim.micro_batch_size=2"),
        (["--nproc", "-1"], "--nproc -1: give the number of processes to start (1 or more)"),
    ],
)
def test_nproc_checks_the_input_before_starting_any_process(tmp_path, colour_dataset, tiny_backbone_name, monkeypatch, arguments, message):
    monkeypatch.setattr(launcher, "torchrun", lambda arguments: pytest.fail("torchrun started"))
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name))
    result = runner.invoke(app, ["train", recipe, f"output_dir={tmp_path / 'run'}", *arguments])
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()).count(message) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_torchrun_prints_an_input_error_once_and_no_process_traceback(tmp_path, colour_dataset, tiny_backbone_name):
    """Every process finds the run directory taken; rank 0 alone says so, and no rank waits in a
    collective for another that has stopped."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: earlier\n")
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(colour_dataset, tiny_backbone_name))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
               "-m", "msta_cli", "train", recipe, f"output_dir={run_dir}"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert finished.returncode != 0
    assert finished.stderr.count("a run already exists here") == 1, finished.stderr[-3000:]
    assert "[rank" not in finished.stderr and "Connection reset" not in finished.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.batch_size=5", "optim.micro_batch_size=2"], "optim.batch_size 5 is not a multiple of micro_batch_size 2 x 1 processes"),
        (["eval.views=3x"], "override eval.views=3x: 'eval.views' must be CLIPSxCROPS"),
        (["data.input_size=64"], "data.input_size 64 does not match the input size of model.backbone"),
        (["adapter.bottleneck=0"], "'adapter.bottleneck' must be at least 1"),
        (["optim.batch_size=4", "optim.micro_batch_size=4", "--nproc", "2"], "optim.batch_size 4 is not a multiple of micro_batch_size 4 x 2 processes"),
        (["loss.consistency_weight=1"], "loss.descriptions: set either `file` (msta format) or all of `spatial`, `temporal` and `labels`"),
        (["protocol.kind=fewshot", "eval.model_selection=best-on-val"], "set eval.val_split to the list its K-shot lists were drawn from"),
    ],
)
def test_dry_run_refuses_what_the_real_run_refuses(tmp_path, tiny_backbone_name, overrides, message):
    text = (f"model:\n  backbone: {tiny_backbone_name}\nadapter:\n  bottleneck: 16\n  blocks: [1, 2]\ndata:\n  input_size: 32\n"
            "loss:\n  consistency_weight: 0\n")
    assert runner.invoke(app, ["train", _recipe(tmp_path, text), "--dry-run"]).exit_code == 0
    result = runner.invoke(app, ["train", _recipe(tmp_path, text), *overrides, "--dry-run"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("rank", "printed"), [("0", True), ("1", False)])
def test_under_torchrun_only_rank_0_prints_an_input_error(tmp_path, monkeypatch, rank, printed):
    """Every process meets the recipe's error; printed by each, it showed once per GPU."""
    monkeypatch.setenv("RANK", rank)
    result = runner.invoke(app, ["train", _recipe(tmp_path, ""), "optim.lrr=1"])
    assert result.exit_code == 2
    assert ("unknown key" in result.stderr) == printed and (result.stderr == "") != printed


def test_json_without_dry_run_is_refused(tmp_path):
    result = runner.invoke(app, ["train", _recipe(tmp_path, ""), "--json"])
    assert result.exit_code == 2
    assert "--json prints the --dry-run result" in result.stderr


def test_a_resume_reuses_the_zero_shot_rows_scored_with_the_same_inputs(tmp_path, colour_dataset, tiny_backbone_name):
    recipe = tiny_recipe(colour_dataset, tiny_backbone_name, optim={"epochs": 1}, eval={"zero_shot_baseline": True})
    run_dir = tmp_path / "run"
    first = runner.invoke(app, ["train", write_recipe(tmp_path / "r.yaml", recipe), f"output_dir={run_dir}"])
    assert first.exit_code == 0 and "evaluating zero-shot" in first.output, first.output
    zero_shot = pd.read_csv(run_dir / "results.csv").query("method == 'zero-shot'")

    extended = runner.invoke(app, ["train", "--resume", str(run_dir), "optim.epochs=2", "data.workers=1"])
    assert extended.exit_code == 0, extended.output
    assert "evaluating zero-shot" not in extended.output  # adapters do not change it
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "results.csv").query("method == 'zero-shot'"), zero_shot)

    other_views = runner.invoke(app, ["train", "--resume", str(run_dir), "eval.views=1x1"])
    assert other_views.exit_code == 0 and "evaluating zero-shot" in other_views.output, other_views.output
    assert pd.read_csv(run_dir / "results.csv").query("method == 'zero-shot'")["views"].tolist() == ["1x1"]


def test_a_video_listed_under_two_classes_is_shown_at_the_start_of_the_run(tmp_path, colour_dataset, tiny_backbone_name):
    rows = pd.read_csv(colour_dataset / "train.csv")
    pd.concat([rows, rows.iloc[[0]].assign(label=2)]).to_csv(tmp_path / "train.csv", index=False)
    recipe = tiny_recipe(colour_dataset, tiny_backbone_name, data={"train_split": str(tmp_path / "train.csv")}, optim={"epochs": 1})
    result = runner.invoke(app, ["train", write_recipe(tmp_path / "r.yaml", recipe), f"output_dir={tmp_path / 'run'}"])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'train.csv'}: 1 video(s) listed under more than one class ({rows['path'].iloc[0]})" in " ".join(result.stderr.split())
