"""Two-process (gloo, CPU) training against one process: the processes must agree on every step."""

import multiprocessing
import os
import shutil
import signal
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from msta_cli.core.config import Config, load_config
from msta_cli.core.data.sharding import ShardedSampler
from msta_cli.core.training import trainer
from msta_cli.core.training.distributed import Distributed, shutdown
from msta_cli.core.training.state import STATE_FILE
from msta_cli.core.training.trainer import Interrupted, process_seed, train_run
from msta_cli.core.training.training_data import load_training_data
from tests.helpers.datasets import colour_clip, tiny_recipe, write_clip, write_colour_dataset, write_recipe

INTERRUPTED = 3  # a worker's exit code after Interrupted


@pytest.fixture(scope="module")
def square_dataset(tmp_path_factory):
    """The colour dataset with square training videos: a full-frame crop has one position, so
    with no flips training reads the same pixels however the clips are split into batches."""
    root = write_colour_dataset(tmp_path_factory.mktemp("square"), ["red", "green", "blue"], 6, 1)
    rng = np.random.default_rng(0)
    for path in pd.read_csv(root / "train.csv")["path"]:
        write_clip(root / "videos" / path, colour_clip(path.split("/")[0], rng, size=(40, 40)))
    return root


def _config(tmp_path, dataset, backbone, **sections) -> Config:
    """No random augmentation, so runs differ only by float error."""
    sections["data"] = {"crop_scales": [1.0], "flip_probability": 0.0, **sections.get("data", {})}
    return load_config(write_recipe(tmp_path / "recipe.yaml", tiny_recipe(dataset, backbone, **sections)))


def _worker(rank: int, store: str, config: Config, run_dir, interrupt_rank: int | None) -> None:
    """One of two processes of a run; SIGINT reaches `interrupt_rank` only, after step 1."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    world = Distributed(rank, 2, rank)

    def on_event(event):
        if event["event"] == "checkpoint" and event["step"] == 1 and rank == interrupt_rank:
            os.kill(os.getpid(), signal.SIGINT)

    try:
        train_run(config, run_dir, load_training_data(config), world, torch.device("cpu"), on_event=on_event)
    except Interrupted:
        sys.exit(INTERRUPTED)
    finally:
        shutdown(world)


def _train_two_processes(tmp_path, config: Config, run_dir, interrupt_rank: int | None = None) -> list[int | None]:
    """Exit codes of both processes; None for one still running after the timeout (a hang)."""
    run_dir.mkdir(parents=True)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(rank, str(tmp_path / "store"), config, run_dir, interrupt_rank)) for rank in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=90)
    codes = [worker.exitcode for worker in workers]
    for worker in workers:
        if worker.is_alive():
            worker.kill()
            worker.join()
    return codes


def _train_one_process(config: Config, run_dir) -> None:
    run_dir.mkdir(parents=True)
    train_run(config, run_dir, load_training_data(config), Distributed(), torch.device("cpu"))


def _steps(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics.csv").query("kind == 'step'")[["step", "loss", "ce"]].reset_index(drop=True)


def _adapters(run_dir) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoints" / "last" / "adapter.safetensors")


def _largest_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    return max((first[name] - second[name]).abs().max().item() for name in first)


def test_failed_videos_weigh_the_same_in_two_processes_as_in_one(tmp_path, square_dataset, tiny_backbone_name):
    """Steps of 4 clips, 2 per process (micro-batches of 1 under DDP, of 2 in one process): step 2
    reads nothing at all, so must not move the weights (AdamW moves them on zero gradients);
    in step 3 the main process reads nothing and the other 2 clips, which must be the step's
    gradient and its logged loss, not half of it nor a missing row."""
    good = iter(pd.read_csv(square_dataset / "train.csv").itertuples(index=False))
    size, bad = 12, {4, 5, 6, 7, 8, 10}  # positions in epoch 0's order; 8 and 10 are the main process's
    order = ShardedSampler(size, seed=0).shard()
    rows = {index: (f"red/missing_{position}.mp4", 0) if position in bad else next(good) for position, index in enumerate(order)}
    pd.DataFrame([rows[index] for index in range(size)], columns=["path", "label"]).to_csv(tmp_path / "train.csv", index=False)
    _assert_two_processes_train_as_one(tmp_path, square_dataset, tiny_backbone_name, logged_steps=[1, 3])


def _assert_two_processes_train_as_one(tmp_path, dataset, backbone, logged_steps: list[int]) -> None:
    """One epoch of tmp_path/train.csv in steps of 4: 2 processes with micro-batches of 1 against
    one process, step for step and weight for weight (float error: 2e-5)."""
    sections = {"data": {"train_split": str(tmp_path / "train.csv")}, "optim": {"epochs": 1, "batch_size": 4}}
    two = tmp_path / "two"
    config = _config(tmp_path, dataset, backbone, **sections)
    config.optim.micro_batch_size = 1
    assert _train_two_processes(tmp_path, config, two) == [0, 0]
    one = tmp_path / "one"
    _train_one_process(_config(tmp_path, dataset, backbone, **sections), one)
    assert _steps(two)["step"].tolist() == _steps(one)["step"].tolist() == logged_steps
    pd.testing.assert_frame_equal(_steps(two), _steps(one), rtol=1e-5)
    assert _largest_difference(_adapters(two), _adapters(one)) < 2e-4


def test_a_training_list_that_two_processes_do_not_divide_trains_as_in_one(tmp_path, square_dataset, tiny_backbone_name):
    """17 videos over 2 processes: the second's ninth slot is padding. Read, it repeated a video
    at full weight, and two processes trained other weights than one."""
    pd.read_csv(square_dataset / "train.csv").iloc[:17].to_csv(tmp_path / "train.csv", index=False)
    _assert_two_processes_train_as_one(tmp_path, square_dataset, tiny_backbone_name, logged_steps=[1, 2, 3, 4, 5])


def test_a_short_last_step_is_the_mean_over_its_clips(tmp_path, square_dataset, tiny_backbone_name, monkeypatch):
    """Copies of two videos x, y in the order x y x y | x y, steps of 4 in micro-batches of 2, all
    12 frames (so every copy reads the same pixels), lr 0 (so the weights stay put): the short
    last step's gradient is the mean over {x, y}, as is the full step's, not half of it."""
    videos = square_dataset / "videos"
    order = ShardedSampler(6, seed=0).shard()
    rows = {}
    for position, index in enumerate(order):
        source = "red/train_0.mp4" if position % 2 == 0 else "green/train_0.mp4"
        rows[index] = (f"{source[:-4]}_copy_{position}.mp4", 0 if position % 2 == 0 else 1)
        shutil.copy(videos / source, videos / rows[index][0])
    pd.DataFrame([rows[index] for index in range(6)], columns=["path", "label"]).to_csv(tmp_path / "train.csv", index=False)
    config = _config(tmp_path, square_dataset, tiny_backbone_name, data={"train_split": str(tmp_path / "train.csv"), "num_frames": 12},
                     optim={"epochs": 1, "lr": 0.0, "batch_size": 4, "micro_batch_size": 2})
    gradients = []
    step = trainer._optimizer_step

    def recording(optimizer, scaler, config):
        gradients.append(torch.cat([parameter.grad.flatten() for group in optimizer.param_groups for parameter in group["params"]]))
        step(optimizer, scaler, config)

    monkeypatch.setattr(trainer, "_optimizer_step", recording)
    _train_one_process(config, tmp_path / "run")
    full, short = gradients
    torch.testing.assert_close(short, full, rtol=1e-4, atol=1e-7)


def test_sigint_reaching_one_process_stops_both_after_saving(tmp_path, square_dataset, tiny_backbone_name):
    """Ctrl-C on one node of a multi-node job reaches that node's processes only."""
    config = _config(tmp_path, square_dataset, tiny_backbone_name, optim={"epochs": 3}, run={"checkpoint_every_steps": 1})
    assert _train_two_processes(tmp_path, config, tmp_path / "run", interrupt_rank=1) == [INTERRUPTED, INTERRUPTED]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last" / STATE_FILE, weights_only=True)
    assert state["progress"]["global_step"] == 1  # the step SIGINT arrived in


def test_each_process_of_each_seed_draws_its_own_random_stream():
    """seed + rank made rank 1 of seed 1 draw rank 0 of seed 2's augmentations."""
    seeds = [process_seed(seed, rank) for seed in range(4) for rank in range(8)]
    assert len(set(seeds)) == len(seeds)
    assert [process_seed(seed, 0) for seed in range(4)] == [0, 1, 2, 3]  # one process: as before
