import hashlib
import json
import os
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file

from msta_cli.core.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    checkpoint_sampling,
    load_adapter,
    model_from_checkpoint,
    read_adapter_config,
    save_adapter,
)
from msta_cli.core.backbone import TINY, TINY_DIR
from msta_cli.core.config import AdapterConfig, Config, ModelConfig
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError
from msta_cli.core.model import MstaModel, create_model
from tests.helpers.models import write_tiny_clip


def _outputs(model: MstaModel) -> torch.Tensor:
    torch.manual_seed(1)
    frames = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        return model(frames, model.class_embeddings(["run", "jump"]))


def test_round_trip_gives_identical_outputs(tiny_model, tmp_path):
    save_adapter(tiny_model, tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == sorted([CONFIG_FILE, WEIGHTS_FILE])
    model_config, adapter_config, templates = read_adapter_config(tmp_path / "ckpt")
    torch.manual_seed(123)  # different random adapters until the checkpoint is loaded
    fresh = create_model(Config(model=model_config, adapter=adapter_config))
    assert not torch.equal(_outputs(fresh), _outputs(tiny_model))
    restored = model_from_checkpoint(tmp_path / "ckpt")
    assert torch.equal(_outputs(restored), _outputs(tiny_model))
    assert restored.templates == tiny_model.templates == templates


def test_config_records_backbone_adapter_template_and_version(tiny_model, tmp_path):
    save_adapter(tiny_model, tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert config["backbone"]["name"] == tiny_model.backbone.name
    assert config["adapter"]["bottleneck"] == 16 and config["templates"] == tiny_model.templates
    assert config["msta_version"] and config["preprocessing"]["mean"] == [0.5, 0.4, 0.3]
    assert not list(tmp_path.glob("*.tmp"))


def test_loading_onto_a_different_backbone_is_an_error(tiny_model, tiny_config, tmp_path):
    save_adapter(tiny_model, tmp_path / "ckpt")
    tiny_config.model.backbone = write_tiny_clip(tmp_path / "wider", width=96)
    tiny_config.adapter.bottleneck = 16
    other = create_model(tiny_config)
    with pytest.raises(InputError, match=r"trained on a different backbone \(name: .*vision_width: checkpoint 64, model 96"):
        load_adapter(other, tmp_path / "ckpt")


def test_loading_into_other_adapter_shapes_is_an_error_not_a_partial_load(tiny_model, tiny_config, tmp_path):
    save_adapter(tiny_model, tmp_path / "ckpt")
    tiny_config.adapter.blocks = [2, 2]
    other = create_model(tiny_config)
    before = {k: v.clone() for k, v in other.adapters.state_dict().items()}
    with pytest.raises(InputError, match="adapter weights do not fit"):
        load_adapter(other, tmp_path / "ckpt")
    assert all(torch.equal(v, before[k]) for k, v in other.adapters.state_dict().items())


def test_missing_or_foreign_checkpoint_folders(tiny_model, tmp_path):
    with pytest.raises(InputError, match="adapter_config.json: not found"):
        load_adapter(tiny_model, tmp_path)
    (tmp_path / CONFIG_FILE).write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not an msta adapter config"):
        load_adapter(tiny_model, tmp_path)


def test_full_finetuning_checkpoint_is_refused_since_it_lacks_the_backbone(tiny_config, tmp_path):
    tiny_config.adapter.finetune, tiny_config.adapter.towers = "full", "none"
    model = create_model(tiny_config)
    save_adapter(model, tmp_path)
    with pytest.raises(InputError, match="full fine-tuning"):
        load_adapter(model, tmp_path)


def test_msta_tiny_adapters_record_its_weights_and_refuse_other_msta_tiny_weights(tmp_path):
    model = create_model(Config(model=ModelConfig(backbone=TINY), adapter=AdapterConfig(bottleneck=16, blocks=[4, 4])))
    save_adapter(model, tmp_path / "ckpt")
    digest = hashlib.sha256((TINY_DIR / "open_clip_model.safetensors").read_bytes()).hexdigest()[:16]
    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    assert config["backbone"]["pretrained"] == f"sha256:{digest}"
    load_adapter(model, tmp_path / "ckpt")
    config["backbone"]["pretrained"] = "none"  # as written for the msta-tiny shipped before this one
    (tmp_path / "ckpt" / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(InputError, match="pretrained: checkpoint 'none'.*msta-tiny's weights have changed since"):
        load_adapter(model, tmp_path / "ckpt")


def test_frames_per_clip_are_recorded_when_given_and_optional(tiny_model, tmp_path):
    save_adapter(tiny_model, tmp_path / "export", ClipSampling(3))
    assert checkpoint_sampling(tmp_path / "export") == ClipSampling(3)
    save_adapter(tiny_model, tmp_path / "older")  # as in-run checkpoints and older exports are
    assert checkpoint_sampling(tmp_path / "older") is None
    model_from_checkpoint(tmp_path / "older")


def test_dense_sampling_is_recorded_with_its_stride_and_older_files_mean_segments(tiny_model, tmp_path):
    save_adapter(tiny_model, tmp_path, ClipSampling(3, "dense", 4))
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert (config["num_frames"], config["sampling"], config["dense_stride"]) == (3, "dense", 4)
    assert checkpoint_sampling(tmp_path) == ClipSampling(3, "dense", 4)
    for key in ("sampling", "dense_stride"):  # as adapter exports written before msta recorded the sampling
        del config[key]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    assert checkpoint_sampling(tmp_path) == ClipSampling(3, "segment")


def test_local_dir_adapters_record_the_folders_weights_and_refuse_others_put_there(tmp_path, tiny_config):
    tiny_config.model.backbone = write_tiny_clip(tmp_path / "clip")
    save_adapter(create_model(tiny_config), tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    digest = hashlib.sha256((tmp_path / "clip" / "open_clip_model.safetensors").read_bytes()).hexdigest()[:16]
    assert config["backbone"]["pretrained"] == f"sha256:{digest}"
    model_from_checkpoint(tmp_path / "ckpt")
    weights = load_file(tmp_path / "clip" / "open_clip_model.safetensors")
    save_file({name: tensor + 1 for name, tensor in weights.items()}, tmp_path / "clip" / "open_clip_model.safetensors")
    with pytest.raises(InputError, match=r"pretrained: checkpoint 'sha256:.*the weights in .*clip are not the ones"):
        model_from_checkpoint(tmp_path / "ckpt")
    config["backbone"]["pretrained"] = "openai"  # as recorded before msta hashed local-dir weights
    (tmp_path / "ckpt" / CONFIG_FILE).write_text(json.dumps(config))
    model_from_checkpoint(tmp_path / "ckpt")


def test_local_dir_path_is_recorded_absolute_and_a_moved_folder_is_explained(tmp_path, tiny_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tiny_clip(tmp_path / "clip")
    tiny_config.model.backbone = "local-dir:clip"
    save_adapter(create_model(tiny_config), tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    assert config["backbone"]["name"] == f"local-dir:{tmp_path / 'clip'}"
    monkeypatch.chdir(tmp_path / "ckpt")
    model_from_checkpoint(tmp_path / "ckpt")
    (tmp_path / "clip").rename(tmp_path / "moved")
    with pytest.raises(InputError, match=r"adapter_config.json: backbone folder .*clip not found; this path was recorded by the run"):
        model_from_checkpoint(tmp_path / "ckpt")


def test_an_older_relative_local_dir_path_still_loads_from_its_folder(tmp_path, tiny_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tiny_clip(tmp_path / "clip")
    tiny_config.model.backbone = "local-dir:clip"
    save_adapter(create_model(tiny_config), tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    config["backbone"]["name"] = "local-dir:clip"
    (tmp_path / "ckpt" / CONFIG_FILE).write_text(json.dumps(config))
    model_from_checkpoint(tmp_path / "ckpt")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda c: c.pop("templates"), "missing 'templates'"),
        (lambda c: c.update(future_key=1), "unknown key\\(s\\) 'future_key'; valid keys: format, msta_version, backbone, .*; written by a newer msta"),
        (lambda c: c["adapter"].update(bottleneck="8"), "'adapter.bottleneck' must be an integer; got '8'"),
        (lambda c: c["adapter"].update(rank=4), "unknown adapter key\\(s\\) 'rank'; written by a newer msta"),
        (lambda c: c["adapter"].update(temporal="sideways"), "'adapter.temporal' must be one of grouped"),
        (lambda c: c.update(backbone="ViT"), "'backbone' must be a mapping"),
        (lambda c: c.update(num_frames=0), "'num_frames' must be a positive integer"),
        (lambda c: c.update(sampling="sparse"), "'sampling' must be one of segment, dense; got 'sparse'"),
        (lambda c: c.update(dense_stride=0), "'dense_stride' must be a positive integer .*; got 0"),
        (lambda c: c.pop("dense_stride"), "'dense_stride' must be a positive integer .*; got None"),
        (lambda c: c.pop("num_frames"), "'num_frames' must be a positive integer; got None"),
        (lambda c: c.update(selection="best"), "'selection' must be one of last, best-on-val, best-on-test"),
        (lambda c: c.update(epoch="7"), "'epoch' must be a non-negative integer"),
    ],
)
def test_a_damaged_config_is_an_input_error_naming_the_file(tiny_model, tmp_path, damage, message):
    save_adapter(tiny_model, tmp_path, ClipSampling(8, "dense", 2))
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    damage(config)
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(InputError, match=f"{CONFIG_FILE}: {message}"):
        model_from_checkpoint(tmp_path)


def test_adapter_weights_are_readable_by_group_and_others_under_umask_022(tiny_model, tmp_path):
    previous = os.umask(0o022)
    try:
        save_adapter(tiny_model, tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / WEIGHTS_FILE).stat().st_mode) == 0o644
