import re

import pytest

from msta_cli.core.checkpoint import save_adapter
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError
from msta_cli.core.inference.sources import resolve_checkpoint, resolve_source, run_sampling
from tests.core.inference.helpers import SAMPLING, tiny_adapted_model, write_checkpoint, write_run


def test_run_folder_means_best_checkpoint_else_last(tmp_path, tiny_backbone_name):
    only_last = resolve_source(write_run(tmp_path / "a", tiny_backbone_name, ("last",)))
    both = resolve_source(write_run(tmp_path / "b", tiny_backbone_name, ("last", "best")))
    assert only_last.path == tmp_path / "a" / "checkpoints" / "last"
    assert both.path == tmp_path / "b" / "checkpoints" / "best"
    assert both.kind == "checkpoint" and both.run_dir == tmp_path / "b"
    assert run_sampling(both) == SAMPLING


def test_checkpoint_folder_or_one_of_its_files_and_its_run(tmp_path, tiny_backbone_name):
    run = write_run(tmp_path / "run", tiny_backbone_name)
    inside = resolve_source(run / "checkpoints" / "last" / "adapter.safetensors")
    assert inside.path == run / "checkpoints" / "last" and inside.run_dir == run
    alone = resolve_source(write_checkpoint(tmp_path / "ckpt", tiny_backbone_name))
    assert alone.kind == "checkpoint" and alone.run_dir is None and run_sampling(alone) is None


def test_exports_by_suffix(tmp_path):
    for name, kind in (("m.safetensors", "merged"), ("m.onnx", "onnx"), ("m.pt", "torchscript")):
        (tmp_path / name).write_bytes(b"x")
        assert resolve_source(tmp_path / name).kind == kind
    with pytest.raises(InputError, match="m.onnx: an ONNX export cannot be exported again"):
        resolve_checkpoint(tmp_path / "m.onnx")


def test_things_that_are_not_models_say_what_was_expected(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("x")
    cases = {
        tmp_path / "missing": "no such file or folder",
        tmp_path / "run": "run has no checkpoint yet",
        tmp_path: "neither a training run",
        tmp_path / "notes.txt": "not a model msta can load",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=message):
            resolve_source(path)


def test_an_adapter_export_brings_its_frames_and_older_checkpoints_have_none(tmp_path, tiny_backbone_name):
    exported = save_adapter(tiny_adapted_model(tiny_backbone_name), tmp_path / "export", ClipSampling(3))
    assert run_sampling(resolve_source(exported)) == ClipSampling(3)
    assert run_sampling(resolve_source(write_checkpoint(tmp_path / "older", tiny_backbone_name))) is None


def test_a_runs_dense_sampling_comes_with_its_checkpoints(tmp_path, tiny_backbone_name):
    run = write_run(tmp_path / "run", tiny_backbone_name, dense_stride=3)
    expected = ClipSampling(SAMPLING.num_frames, "dense", 3)
    assert run_sampling(resolve_source(run)) == run_sampling(resolve_source(run / "checkpoints" / "last")) == expected


def test_a_folder_of_runs_names_them(tmp_path, tiny_backbone_name):
    write_run(tmp_path / "protocol" / "seed1", tiny_backbone_name)
    write_run(tmp_path / "protocol" / "seed2", tiny_backbone_name)
    expected = f"pick one: {tmp_path / 'protocol' / 'seed1'}, {tmp_path / 'protocol' / 'seed2'}"
    with pytest.raises(InputError, match=re.escape(expected)):
        resolve_checkpoint(tmp_path / "protocol")


def test_a_training_state_file_is_not_a_model(tmp_path, tiny_backbone_name):
    checkpoint = write_checkpoint(tmp_path / "last", tiny_backbone_name)
    (checkpoint / "training_state.pt").write_bytes(b"state")
    with pytest.raises(InputError, match="a training-state file .* not a model; give the checkpoint folder"):
        resolve_source(checkpoint / "training_state.pt")
