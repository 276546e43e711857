import pytest
import torch

from msta_cli.core.checkpoint import CONFIG_FILE
from msta_cli.core.errors import InputError
from msta_cli.core.training.state import (
    STATE_FILE,
    Progress,
    load_training_checkpoint,
    restore_checkpoint,
    rng_state,
    save_training_checkpoint,
)


def _training_objects(model):
    optimizer = torch.optim.AdamW(model.adapters.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return optimizer, scheduler, torch.amp.GradScaler("cpu", enabled=False)


def test_restore_checkpoint_puts_back_one_left_between_a_saves_two_renames(tmp_path):
    last = tmp_path / "checkpoints" / "last"
    assert not restore_checkpoint(last)
    retired = tmp_path / "checkpoints" / ".last.old"
    retired.mkdir(parents=True)
    (retired / CONFIG_FILE).write_text("{}")
    assert restore_checkpoint(last)
    assert (last / CONFIG_FILE).is_file() and not retired.exists()
    assert restore_checkpoint(last)


def test_a_checkpoint_resumes_only_ranks_it_has_random_streams_for(tmp_path, tiny_model):
    save_training_checkpoint(tmp_path / "last", tiny_model, *_training_objects(tiny_model), Progress(global_step=3), [rng_state()])
    assert load_training_checkpoint(tmp_path / "last", tiny_model, *_training_objects(tiny_model), rank=0).global_step == 3
    with pytest.raises(InputError, match="saved by a run of 1 process"):
        load_training_checkpoint(tmp_path / "last", tiny_model, *_training_objects(tiny_model), rank=1)


def test_a_damaged_training_state_names_the_file_and_how_to_start_the_run_again(tmp_path, tiny_model):
    save_training_checkpoint(tmp_path / "last", tiny_model, *_training_objects(tiny_model), Progress(global_step=3), [rng_state()])
    state = tmp_path / "last" / STATE_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"^{state}: cannot read the training state \(.+\); this run cannot continue from "
                       rf"{tmp_path / 'last'}. Delete that folder to train the run again from step 0$"):
        load_training_checkpoint(tmp_path / "last", tiny_model, *_training_objects(tiny_model), rank=0)
