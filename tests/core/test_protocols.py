"""Protocol runs: what a user is told to do after an interrupted one."""

import os
import signal

import pytest
import torch

from msta_cli.core.config import load_config
from msta_cli.core.protocols import prepare_protocol, resume_command, run_protocol
from msta_cli.core.training.distributed import Distributed
from msta_cli.core.training.trainer import Interrupted
from tests.helpers.datasets import tiny_recipe, write_recipe


def test_an_interrupted_protocol_run_says_to_resume_the_protocols_folder(tmp_path, colour_dataset, tiny_backbone_name):
    sets = [{"name": name, "split": "test.csv", "labels": "labels.csv"} for name in ("base", "novel")]
    recipe = tiny_recipe(colour_dataset, tiny_backbone_name, protocol={"kind": "base2novel", "seeds": [1]},
                         optim={"epochs": 3}, eval={"sets": sets, "zero_shot_baseline": False})
    config = load_config(write_recipe(tmp_path / "r.yaml", recipe), [f"output_dir={tmp_path / 'run'}"])
    world = Distributed()
    run_dir, runs = prepare_protocol(config, None, world)

    def interrupt(event):
        if event["event"] == "step" and event["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted) as stopped:
        run_protocol(config, run_dir, runs, world, torch.device("cpu"), on_event=interrupt)
    assert str(stopped.value) == f"seed1: interrupted at step 2; saved. Resume with: msta train --resume {run_dir}"


def test_the_resume_command_starts_as_many_processes_as_the_run_had(tmp_path):
    """A resume with another process count is refused, so the printed command must match."""
    assert resume_command(tmp_path / "run", Distributed()) == f"msta train --resume {tmp_path / 'run'}"
    assert resume_command(tmp_path / "run", Distributed(1, 4, 1)) == f"msta train --resume {tmp_path / 'run'} --nproc 4"
