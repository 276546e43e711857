import hashlib
import json

import pytest
import torch

from msta_cli.core.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_adapter,
    model_from_checkpoint,
    read_adapter_config,
    save_adapter,
)
from msta_cli.core.backbone import TINY, TINY_DIR
from msta_cli.core.config import AdapterConfig, Config, ModelConfig
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
