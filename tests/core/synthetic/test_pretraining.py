import math
from dataclasses import replace

import open_clip
import pytest
import torch

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.synthetic.pretraining import PretrainOptions, learning_rate, orientation_loss, pretrain
from msta_cli.core.synthetic.vocabulary import Caption

OPTIONS = PretrainOptions(steps=2, batch_size=8, warmup_steps=1, eval_every=2, eval_images=8, threads=1)


def test_same_seed_gives_identical_weights_in_a_loadable_open_clip_folder(tmp_path):
    rows = []
    summary = pretrain(tmp_path / "a", OPTIONS, on_log=rows.append)
    pretrain(tmp_path / "b", OPTIONS)
    weights = "open_clip_model.safetensors"
    assert (tmp_path / "a" / weights).read_bytes() == (tmp_path / "b" / weights).read_bytes()
    assert [row["step"] for row in rows] == [1, 2] and {"shape", "position", "exact"} <= set(rows[-1])
    assert summary["final"] == rows[-1]
    model = open_clip.create_model(f"local-dir:{tmp_path / 'a'}")
    assert sum(p.numel() for p in model.parameters()) == summary["parameters"]
    assert (tmp_path / "a" / "training_log.csv").read_text().startswith("step,seconds,loss")


def test_the_position_loss_trains_the_image_tower_and_leaves_no_head_in_the_model(tmp_path):
    plain = pretrain(tmp_path / "plain", replace(OPTIONS, position_loss=0.0))
    summary = pretrain(tmp_path / "position", replace(OPTIONS, position_loss=1.0))
    weights = "open_clip_model.safetensors"
    assert summary["options"]["position_loss"] == 1.0 and plain["options"]["position_loss"] == 0.0
    assert summary["parameters"] == plain["parameters"]  # the auxiliary head is not saved
    assert (tmp_path / "plain" / weights).read_bytes() != (tmp_path / "position" / weights).read_bytes()
    first = dict(open_clip.create_model(f"local-dir:{tmp_path / 'plain'}").named_parameters())
    second = dict(open_clip.create_model(f"local-dir:{tmp_path / 'position'}").named_parameters())
    assert not torch.equal(first["visual.proj"], second["visual.proj"])


def test_the_orientation_loss_trains_the_image_tower_and_leaves_no_head_in_the_model(tmp_path):
    plain = pretrain(tmp_path / "plain", OPTIONS)
    summary = pretrain(tmp_path / "oriented", replace(OPTIONS, orientation_loss=1.0))
    assert plain["options"]["orientation_loss"] == 0.0
    assert summary["options"]["orientation_loss"] == 1.0 and summary["parameters"] == plain["parameters"]
    first = dict(open_clip.create_model(f"local-dir:{tmp_path / 'plain'}").named_parameters())
    second = dict(open_clip.create_model(f"local-dir:{tmp_path / 'oriented'}").named_parameters())
    assert not torch.equal(first["visual.proj"], second["visual.proj"])


def test_orientation_target_is_the_same_for_angles_a_symmetry_turn_apart_and_ignores_circles():
    captions = [Caption("square", "red", "small", "top"), Caption("square", "red", "small", "top"),
                Caption("triangle", "red", "small", "top"), Caption("circle", "red", "small", "top")]
    perfect = torch.tensor([[math.cos(math.radians(4 * 10)), math.sin(math.radians(4 * 10))]] * 2
                           + [[math.cos(math.radians(3 * 50)), math.sin(math.radians(3 * 50))], [5.0, 5.0]])
    assert orientation_loss(perfect, captions, [10.0, 100.0, 170.0, 33.0]).item() < 1e-10
    assert orientation_loss(perfect, captions, [10.0, 55.0, 170.0, 33.0]).item() > 0.1
    assert orientation_loss(perfect[3:], captions[3:], [33.0]).item() == 0.0


def test_schedule_warms_up_then_decays_to_zero():
    options = PretrainOptions(steps=100, warmup_steps=10, lr=1.0)
    assert learning_rate(0, options) == 0.1 and learning_rate(9, options) == 1.0
    assert learning_rate(99, options) < 1e-3
    assert torch.tensor([learning_rate(s, options) for s in range(10, 100)]).diff().le(0).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": math.nan}, "--lr must be greater than 0 and at most 1; got nan"),
        ({"position_loss": math.nan}, "--position-loss must be at least 0 and finite; got nan"),
        ({"threads": 0}, "--threads must be at least 1"),
        ({"seed": -1}, "--seed must be at least 0"),
    ],
)
def test_options_are_checked_before_anything_is_created(tmp_path, change, message):
    with pytest.raises(InputError, match=message):
        pretrain(tmp_path / "out", replace(OPTIONS, **change))
    assert not (tmp_path / "out").exists()


def test_an_out_under_a_file_is_refused_before_training(tmp_path):
    (tmp_path / "afile").write_text("")
    rows = []
    with pytest.raises(InputError, match="OUT .*afile/out: .*afile is a file, not a folder"):
        pretrain(tmp_path / "afile" / "out", OPTIONS, on_log=rows.append)
    assert rows == []


def test_a_non_finite_loss_stops_training_at_its_step_and_writes_nothing(tmp_path):
    rows = []
    with pytest.raises(MstaError, match="training diverged at step 1: the loss is inf; nothing was written"):
        pretrain(tmp_path / "out", replace(OPTIONS, position_loss=1e39), on_log=rows.append)
    assert rows == [] and not (tmp_path / "out").exists()


def test_non_finite_weights_after_the_last_update_are_not_written(tmp_path, monkeypatch):
    step = torch.optim.AdamW.step

    def poisoned_step(optimizer, *args, **kwargs):
        step(optimizer, *args, **kwargs)
        optimizer.param_groups[0]["params"][0].data.fill_(math.nan)

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoned_step)
    with pytest.raises(MstaError, match="training diverged at step 1: its update left weights that are not finite"):
        pretrain(tmp_path / "out", replace(OPTIONS, steps=1))
    assert not (tmp_path / "out").exists()
