import logging

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from msta_cli.core.backbone import describe_backbone, load_backbone
from msta_cli.core.config import ModelConfig
from msta_cli.core.errors import InputError, MstaError
from tests.helpers.models import TINY_MEAN, TINY_STD, tiny_model_config, write_tiny_clip


def test_preprocessing_comes_from_the_models_own_config(tiny_backbone_name):
    backbone = load_backbone(ModelConfig(backbone=tiny_backbone_name))
    assert backbone.preprocessing.size == 32
    assert list(backbone.preprocessing.mean) == TINY_MEAN and list(backbone.preprocessing.std) == TINY_STD
    assert not any(p.requires_grad for p in backbone.parameters())


def test_openai_tag_brings_openai_normalisation_without_downloading():
    backbone = load_backbone(ModelConfig(backbone="ViT-B-16-quickgelu", pretrained="none"))
    assert backbone.preprocessing.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert (backbone.vision_width, backbone.text_width, len(backbone.vision_blocks)) == (768, 512, 12)


def test_local_checkpoint_file_is_loaded(tmp_path):
    config_path = tmp_path / "msta-test-tiny.json"
    import json

    config_path.write_text(json.dumps(tiny_model_config()))
    open_clip.add_model_config(config_path)
    torch.manual_seed(7)
    source = open_clip.create_model("msta-test-tiny")
    save_file(source.state_dict(), tmp_path / "weights.safetensors")
    backbone = load_backbone(ModelConfig(backbone="msta-test-tiny", pretrained=str(tmp_path / "weights.safetensors")))
    for name, tensor in source.state_dict().items():
        assert torch.equal(backbone.clip.state_dict()[name], tensor), name


@pytest.mark.parametrize(
    ("file_name", "content"),
    [("random.safetensors", b"\x93" * 64), ("empty.safetensors", b""), ("random.pt", b"\x80\x04junk" * 8),
     ("notes.txt", b"not weights\n"), ("other.pt", None)],
)
def test_a_local_file_that_is_not_these_weights_is_an_input_error_naming_it(tmp_path, file_name, content):
    config_path = tmp_path / "msta-test-tiny.json"
    config_path.write_text(__import__("json").dumps(tiny_model_config()))
    open_clip.add_model_config(config_path)
    path = tmp_path / file_name
    if content is None:  # a real state dict, of another model
        torch.save({"layer.weight": torch.zeros(3, 3)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match=rf"^model.pretrained '{path}': not a checkpoint of 'msta-test-tiny': .+") as caught:
        load_backbone(ModelConfig(backbone="msta-test-tiny", pretrained=str(path)))
    assert len(str(caught.value)) < 500 and "weights_only" not in str(caught.value)


def test_local_dir_weights_are_loaded_and_without_them_weights_are_random(tmp_path):
    with_weights = write_tiny_clip(tmp_path / "with-weights")
    without = write_tiny_clip(tmp_path / "config-only", weights=False)

    def conv_weight(name: str, seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return load_backbone(ModelConfig(backbone=name)).clip.visual.conv1.weight

    assert torch.equal(conv_weight(with_weights, 3), conv_weight(with_weights, 4))
    assert not torch.equal(conv_weight(without, 3), conv_weight(without, 4))


@pytest.mark.parametrize(
    ("backbone", "pretrained", "message"),
    [
        ("ViT-B-16-quickgelo", "openai", r"model.backbone 'ViT-B-16-quickgelo' is unknown. Did you mean 'ViT-B-16-quickgelu'\?"),
        ("ViT-B-16-quickgelu", "opneai", r"model.pretrained 'opneai' is unknown. Did you mean 'openai'\?.*or a local checkpoint file"),
        ("ViT-B-16-quickgelu", "/no/such/weights.pt", r"model.pretrained '/no/such/weights.pt': checkpoint file not found"),
        ("local-dir:/no/such/folder", "none", r"folder not found"),
    ],
)
def test_bad_backbone_choices_are_input_errors(backbone, pretrained, message):
    with pytest.raises(InputError, match=message):
        load_backbone(ModelConfig(backbone=backbone, pretrained=pretrained))


def test_weights_that_cannot_be_downloaded_are_one_error_without_open_clips_log_line(tmp_path, caplog):
    """open_clip logs the failure before raising it; users should read it once, from msta."""
    config = ModelConfig(backbone="ViT-B-16", pretrained="openai", cache_dir=str(tmp_path))  # an empty cache, offline
    with pytest.raises(MstaError, match=r"could not load weights 'openai' for 'ViT-B-16': .*[^.]\. Without network access, point model.pretrained at a local checkpoint file"):
        load_backbone(config)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert not any(isinstance(f, logging.Filter) for f in logging.getLogger().filters)  # removed again


def test_resnet_towers_are_refused():
    with pytest.raises(InputError, match="needs a ViT image tower"):
        load_backbone(ModelConfig(backbone="RN50", pretrained="none"))


def test_msta_tiny_ships_in_the_package_with_its_compact_tokenizer():
    backbone = load_backbone(ModelConfig(backbone="msta-tiny", pretrained="none"))
    tokens = backbone.tokenize(["a video of a triangle rotating clockwise."])
    assert tokens.max() == len(backbone.tokenize.tokens) - 1  # end-of-text, the largest compact id
    assert backbone.preprocessing.size == 64 and backbone.encode_text(tokens).shape == (1, backbone.embed_dim)
    frames = torch.zeros(1, 2, 3, 64, 64)
    assert backbone.encode_video(frames).shape == (1, backbone.embed_dim)


def test_a_pretrain_tiny_folder_loads_with_its_compact_vocabulary():
    from msta_cli.core.backbone import TINY_DIR

    shipped = load_backbone(ModelConfig(backbone="msta-tiny"))
    as_folder = load_backbone(ModelConfig(backbone=f"local-dir:{TINY_DIR}"))
    texts = ["a video of a square moving left.", "a small red circle at the top left"]
    assert torch.equal(as_folder.tokenize(texts), shipped.tokenize(texts))
    assert as_folder.tokenize(texts).max() < shipped.clip.vocab_size  # not open_clip's 49408-token BPE ids


def test_a_backbone_is_described_with_its_tag_only_where_the_tag_is_used():
    assert describe_backbone("ViT-B-16-quickgelu", "openai") == "ViT-B-16-quickgelu (openai)"
    assert describe_backbone("local-dir:/models/clip", "openai") == "local-dir:/models/clip"
    assert describe_backbone("msta-tiny", "openai") == "msta-tiny"
