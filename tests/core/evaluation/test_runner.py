import json

import pytest

from msta_cli.core.checkpoint import CONFIG_FILE, save_adapter
from msta_cli.core.config import Config
from msta_cli.core.errors import InputError
from msta_cli.core.evaluation.runner import checkpoint_overrides, recorded_selection, run_checkpoints


@pytest.fixture
def openai_checkpoint(tmp_path, tiny_model):
    """A checkpoint that records an open_clip name with a pretrained tag (no weights are loaded)."""
    directory = save_adapter(tiny_model, tmp_path / "adapter")
    config = json.loads((directory / CONFIG_FILE).read_text())
    config["backbone"].update(name="ViT-B-16-quickgelu", pretrained="openai")
    (directory / CONFIG_FILE).write_text(json.dumps(config))
    return directory


def recipe(tiny_model, pretrained: str) -> Config:
    config = Config()
    config.model.backbone, config.model.pretrained = "ViT-B-16-quickgelu", pretrained
    config.adapter = tiny_model.adapter_config
    config.text.templates = list(tiny_model.templates)
    return config


def test_the_same_name_and_tag_is_accepted(openai_checkpoint, tiny_model):
    assert checkpoint_overrides(recipe(tiny_model, "openai"), [("", openai_checkpoint)]) == []


def test_the_same_name_with_other_weights_is_refused_naming_both_tags(openai_checkpoint, tiny_model):
    with pytest.raises(InputError) as error:
        checkpoint_overrides(recipe(tiny_model, "laion400m_e32"), [("", openai_checkpoint)])
    assert "ViT-B-16-quickgelu (openai)" in str(error.value) and "ViT-B-16-quickgelu (laion400m_e32)" in str(error.value)


def test_a_local_weights_file_is_compared_by_its_name(tmp_path, openai_checkpoint, tiny_model):
    config = json.loads((openai_checkpoint / CONFIG_FILE).read_text())
    config["backbone"]["pretrained"] = "vit_b16.pt"  # how a run on a local weights file records it
    (openai_checkpoint / CONFIG_FILE).write_text(json.dumps(config))
    weights = tmp_path / "elsewhere" / "vit_b16.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"")
    assert checkpoint_overrides(recipe(tiny_model, str(weights)), [("", openai_checkpoint)]) == []
    with pytest.raises(InputError):
        checkpoint_overrides(recipe(tiny_model, "openai"), [("", openai_checkpoint)])


def test_a_protocol_runs_checkpoints_come_in_the_order_it_trained_them(tmp_path):
    for name in ("k16", "k2", "k8", "k4", "seed10", "seed2"):
        checkpoint = tmp_path / name / "checkpoints" / "last"
        checkpoint.mkdir(parents=True)
        (checkpoint / CONFIG_FILE).write_text("{}")
    assert [label for label, _ in run_checkpoints(tmp_path)] == ["k2", "k4", "k8", "k16", "seed2", "seed10"]


def test_a_checkpoint_is_labelled_by_the_selection_it_records_and_an_older_last_one_as_last(tmp_path, tiny_model):
    assert recorded_selection(save_adapter(tiny_model, tmp_path / "run" / "best", selection="best-on-val", epoch=3)) == "best-on-val"
    assert recorded_selection(save_adapter(tiny_model, tmp_path / "old" / "last")) == "last"
    assert recorded_selection(save_adapter(tiny_model, tmp_path / "old" / "best")) is None  # the recipe says how
