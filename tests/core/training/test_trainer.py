import multiprocessing
import os
import shutil
import signal

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from msta_cli.core.checkpoint import checkpoint_sampling
from msta_cli.core.config import Config, load_config
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.data.sharding import ShardedSampler
from msta_cli.core.errors import MstaError
from msta_cli.core.training.distributed import Distributed
from msta_cli.core.training.state import STATE_FILE
from msta_cli.core.model import create_model
from msta_cli.core.training.optimization import build_optimizer, cosine_with_warmup
from msta_cli.core.training.trainer import Interrupted, clip_gradients, train_run
from msta_cli.core.training.training_data import load_training_data
from tests.helpers.datasets import tiny_recipe, write_recipe

RESUME_OVERRIDES = {"optim": {"epochs": 2, "warmup_epochs": 1}, "run": {"checkpoint_every_steps": 2, "log_every_steps": 1, "deterministic": True}}


def _config(tmp_path, colour_dataset, backbone, **sections) -> Config:
    recipe = write_recipe(tmp_path / "recipe.yaml", tiny_recipe(colour_dataset, backbone, **sections))
    return load_config(recipe)


def _train(config: Config, run_dir, resume=False, on_event=lambda e: None):
    run_dir.mkdir(parents=True, exist_ok=True)
    return train_run(config, run_dir, load_training_data(config), Distributed(), torch.device("cpu"), resume, on_event)


def _killed_at_step(config: Config, run_dir, step: int) -> None:
    """Child process: train, and SIGKILL ourselves right after optimizer step `step`."""
    torch.set_num_threads(1)

    def kill(event):
        if event["event"] == "step" and event["step"] == step:
            os.kill(os.getpid(), signal.SIGKILL)

    _train(config, run_dir, on_event=kill)


def _metric_rows(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics.csv").drop(columns=["clips_per_s"])


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, colour_dataset, tiny_backbone_name):
    torch.set_num_threads(1)
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, **RESUME_OVERRIDES)
    straight = tmp_path / "straight"
    _train(config, straight)

    killed = tmp_path / "killed"
    child = multiprocessing.get_context("spawn").Process(target=_killed_at_step, args=(config, killed, 7))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL
    state = torch.load(killed / "checkpoints" / "last" / STATE_FILE, weights_only=True)
    assert state["progress"]["global_step"] == 6 and state["progress"]["steps_in_epoch"] == 1  # mid-epoch (5 steps/epoch)
    assert _metric_rows(killed)["step"].max() == 7  # logged past the checkpoint before dying

    _train(config, killed, resume=True)
    final = load_file(straight / "checkpoints" / "last" / "adapter.safetensors")
    resumed = load_file(killed / "checkpoints" / "last" / "adapter.safetensors")
    assert final.keys() == resumed.keys()
    for name in final:
        assert torch.equal(final[name], resumed[name]), name
    pd.testing.assert_frame_equal(_metric_rows(straight), _metric_rows(killed))


def test_workers_kept_between_epochs_read_what_the_main_process_would(tmp_path, colour_dataset, tiny_backbone_name):
    """Training keeps its loader's workers from epoch to epoch; each epoch's frame positions
    must still reach them, so the run equals one that decodes in the main process."""
    torch.set_num_threads(1)
    runs = {}
    for workers in (0, 2):
        config = _config(tmp_path, colour_dataset, tiny_backbone_name, **{**RESUME_OVERRIDES, "data": {"workers": workers}})
        runs[workers] = tmp_path / f"workers{workers}"
        _train(config, runs[workers])
    in_process = load_file(runs[0] / "checkpoints" / "last" / "adapter.safetensors")
    in_workers = load_file(runs[2] / "checkpoints" / "last" / "adapter.safetensors")
    for name in in_process:
        assert torch.equal(in_process[name], in_workers[name]), name
    pd.testing.assert_frame_equal(_metric_rows(runs[0]), _metric_rows(runs[2]))


def test_sigint_saves_a_checkpoint_before_exiting(tmp_path, colour_dataset, tiny_backbone_name):
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, optim={"epochs": 3})

    def interrupt(event):
        if event["event"] == "step" and event["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted, match="^interrupted at step 2; saved$"):
        _train(config, tmp_path / "run", on_event=interrupt)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last" / STATE_FILE, weights_only=True)
    assert state["progress"]["global_step"] == 2


def _interrupted_like_ctrl_c(config: Config, run_dir, step: int, outcome) -> None:
    """Child process in a session of its own: train, and at step `step` send SIGINT to the whole
    process group (the trainer and its data-loader workers), as Ctrl-C in a terminal does."""
    os.setsid()
    torch.set_num_threads(1)

    def interrupt(event):
        if event["event"] == "step" and event["step"] == step:
            os.killpg(os.getpgid(0), signal.SIGINT)

    try:
        _train(config, run_dir, on_event=interrupt)
    except Interrupted as error:
        outcome.put(str(error))


def test_ctrl_c_reaching_the_kept_workers_too_still_saves_and_stops(tmp_path, colour_dataset, tiny_backbone_name):
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, optim={"epochs": 3}, data={"workers": 2})
    context = multiprocessing.get_context("spawn")
    outcome = context.Queue()
    child = context.Process(target=_interrupted_like_ctrl_c, args=(config, tmp_path / "run", 7, outcome))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    assert "interrupted at step 7" in outcome.get(timeout=5)  # in the second epoch: workers kept from the first
    state = torch.load(tmp_path / "run" / "checkpoints" / "last" / STATE_FILE, weights_only=True)
    assert state["progress"]["global_step"] == 7


def test_only_adapters_change_and_problems_are_recorded(tmp_path, colour_dataset, tiny_backbone_name):
    split = pd.read_csv(colour_dataset / "train.csv")
    broken = tmp_path / "with_missing.csv"
    pd.concat([split, pd.DataFrame({"path": ["red/missing.mp4"], "label": [0]})]).to_csv(broken, index=False)
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, data={"train_split": str(broken)}, optim={"epochs": 1})
    outcome = _train(config, tmp_path / "run")
    problems = pd.read_csv(tmp_path / "run" / "problems.csv")
    assert problems["path"].tolist() == ["red/missing.mp4"] and problems["reason"].str.len().min() > 0
    assert outcome.progress.global_step == 5  # 19 videos, micro-batch 2, accumulation 2


def test_checkpoints_record_the_clips_the_run_was_evaluated_with(tmp_path, colour_dataset, tiny_backbone_name):
    """A checkpoint copied out of its run has no config.yaml beside it: without this record
    `msta predict` and `msta export` fell back to 8-frame segments."""
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, data={"num_frames": 3, "sampling": "dense", "dense_stride": 2}, optim={"epochs": 1})
    _train(config, tmp_path / "run")
    copied = shutil.copytree(tmp_path / "run" / "checkpoints" / "last", tmp_path / "copied")
    assert checkpoint_sampling(copied) == ClipSampling(3, "dense", 2)


def test_an_epoch_that_reads_no_video_stops_the_run_naming_the_failures(tmp_path, colour_dataset, tiny_backbone_name):
    """Every video unreadable (an unsupported codec, say) must not look like a finished run."""
    unreadable = pd.DataFrame({"path": [f"red/gone_{i}.mp4" for i in range(5)], "label": [0] * 5})
    unreadable.to_csv(tmp_path / "gone.csv", index=False)
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, data={"train_split": str(tmp_path / "gone.csv")},
                     eval={"model_selection": "best-on-test"})
    events = []
    with pytest.raises(
        MstaError,
        match=r"epoch 0: no training video could be read \(5 failed, e.g. red/gone_0.mp4: file not found\); "
        r"every failure is in .*problems.csv",
    ):
        _train(config, tmp_path / "run", on_event=events.append)
    assert sorted(pd.read_csv(tmp_path / "run" / "problems.csv")["path"]) == unreadable["path"].tolist()
    # stopped after its first epoch, before scoring it for model selection
    assert not [event for event in events if event["event"] in ("epoch", "selection")]


def test_model_selection_on_a_set_of_which_no_video_could_be_scored_stops_the_run(tmp_path, colour_dataset, tiny_backbone_name):
    """Every epoch would score NaN, and the first would stay "best" without a word."""
    pd.DataFrame({"path": ["red/gone.mp4"], "label": [0]}).to_csv(tmp_path / "gone.csv", index=False)
    config = _config(
        tmp_path, colour_dataset, tiny_backbone_name,
        eval={"model_selection": "best-on-test", "sets": [{"name": "test", "split": str(tmp_path / "gone.csv"), "labels": "labels.csv"}]},
    )
    with pytest.raises(MstaError, match=r"model selection \(best-on-test\): no video of the test set could be scored "
                       r"\(1 failed, e.g. red/gone.mp4: file not found\)"):
        _train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "best").exists()


def test_the_epoch_event_counts_the_unreadable_videos(tmp_path, colour_dataset, tiny_backbone_name):
    split = pd.read_csv(colour_dataset / "train.csv")
    broken = tmp_path / "with_missing.csv"
    pd.concat([split, pd.DataFrame({"path": ["red/missing.mp4"], "label": [0]})]).to_csv(broken, index=False)
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, data={"train_split": str(broken)}, optim={"epochs": 2})
    events = []
    _train(config, tmp_path / "run", on_event=events.append)
    assert [(event["epoch"], event["unreadable"]) for event in events if event["event"] == "epoch"] == [(1, 1), (2, 1)]


@pytest.mark.parametrize("stop", ["sigint", "crash"])
def test_a_run_stopped_mid_epoch_keeps_the_failures_seen_so_far(tmp_path, colour_dataset, tiny_backbone_name, stop):
    split = pd.read_csv(colour_dataset / "train.csv")
    missing = [f"red/missing_{i}.mp4" for i in range(4)]
    broken = tmp_path / "with_missing.csv"
    pd.concat([split, pd.DataFrame({"path": missing, "label": 0})], ignore_index=True).to_csv(broken, index=False)
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, data={"train_split": str(broken)}, optim={"epochs": 3})
    rows = pd.read_csv(broken)["path"]
    read = {rows[i] for i in ShardedSampler(len(rows), seed=config.seed).shard()[:8]}  # 2 steps x 2 x micro-batch 2
    assert read & set(missing) and set(missing) - read  # some read before the stop, some not

    def halt(event):
        if event["event"] == "step" and event["step"] == 2:
            if stop == "crash":
                raise RuntimeError("crash")
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted if stop == "sigint" else RuntimeError):
        _train(config, tmp_path / "run", on_event=halt)
    problems = pd.read_csv(tmp_path / "run" / "problems.csv")
    assert problems.values.tolist() == [[path, "file not found", 0] for path in sorted(read & set(missing))]


def _own_copy(dataset, target):
    """A colour dataset whose videos can be changed: dataset.yaml points at the copy's videos."""
    shutil.copytree(dataset, target)
    (target / "dataset.yaml").write_text(f"name: colours\nvideo_root: {target / 'videos'}\n")
    return target


def test_resume_keeps_the_failures_of_the_epochs_before_it(tmp_path, colour_dataset, tiny_backbone_name):
    dataset = _own_copy(colour_dataset, tmp_path / "data")
    split = pd.read_csv(dataset / "train.csv")
    pd.concat([split, pd.DataFrame({"path": ["red/late.mp4"], "label": [0]})]).to_csv(dataset / "train.csv", index=False)
    config = _config(tmp_path, dataset, tiny_backbone_name, optim={"epochs": 1})
    run_dir = tmp_path / "run"
    _train(config, run_dir)
    shutil.copy(dataset / "videos" / "red" / "train_0.mp4", dataset / "videos" / "red" / "late.mp4")  # arrives late
    (dataset / "videos" / "green" / "train_0.mp4").unlink()  # vanishes after epoch 0

    config.optim.epochs = 2
    outcome = _train(config, run_dir, resume=True)
    problems = pd.read_csv(run_dir / "problems.csv")
    assert problems.values.tolist() == [["green/train_0.mp4", "file not found", 1], ["red/late.mp4", "file not found", 0]]
    assert outcome.failures == [("green/train_0.mp4", "file not found"), ("red/late.mp4", "file not found")]


def test_metrics_log_the_learning_rate_each_step_ran_at(tmp_path, colour_dataset, tiny_backbone_name):
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, optim={"epochs": 2, "warmup_epochs": 1})
    _train(config, tmp_path / "run")
    steps = _metric_rows(tmp_path / "run").query("kind == 'step'")
    # 5 steps per epoch: the row of step s (counted from 1) ran at the schedule's value for s - 1
    expected = [config.optim.lr * cosine_with_warmup(step - 1, 5, 10, config.optim.min_lr_ratio) for step in steps["step"]]
    assert steps["step"].tolist() == list(range(1, 11))
    assert steps["lr"].tolist() == pytest.approx(expected)
    assert steps["lr"].iloc[0] == 0.0  # warm-up starts from 0


def test_gradient_clipping_covers_the_backbone_when_it_is_fine_tuned(tmp_path, colour_dataset, tiny_backbone_name):
    config = _config(tmp_path, colour_dataset, tiny_backbone_name, adapter={"finetune": "full"})
    model = create_model(config, torch.device("cpu"))
    optimizer = build_optimizer(model, config.optim)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    assert any(parameter.requires_grad for parameter in model.backbone.parameters())
    for parameter in trainable:
        parameter.grad = torch.full_like(parameter, 10.0)
    norm_before = clip_gradients(optimizer, 1.0)
    assert norm_before > 100
    assert torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainable])) == pytest.approx(1.0, rel=1e-2)  # float32 sums over 3.4M values
