import typing
from pathlib import Path

import pytest

from msta_cli.core.config import Config, DataConfig, dump_config, load_config
from msta_cli.core.data.decoding import BACKENDS
from msta_cli.core.errors import InputError

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _recipe(tmp_path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_shipped_recipes_spell_out_the_reference_configs():
    base2novel = load_config(RECIPES / "base2novel.yaml")
    fewshot = load_config(RECIPES / "fewshot.yaml")
    assert (base2novel.adapter.bottleneck, base2novel.adapter.blocks) == (256, [1, 12])
    assert (fewshot.adapter.bottleneck, fewshot.adapter.blocks) == (128, [8, 12])
    for config in (base2novel, fewshot):
        assert config.optim.lr == 1e-3 and config.optim.weight_decay == 1e-3
        assert config.optim.betas == [0.9, 0.98] and config.optim.eps == 1e-8
        assert (config.optim.epochs, config.optim.warmup_epochs, config.optim.min_lr_ratio) == (50, 5, 0.01)
        assert config.optim.batch_size == 32 and config.loss.consistency_weight == 1.0
        assert config.adapter.scale == 0.005 and config.data.num_frames == 8
        assert config.data.crop_scales == [1.0, 0.875, 0.75, 0.66]
    assert (base2novel.protocol.kind, base2novel.protocol.seeds) == ("base2novel", [1, 2, 3])
    assert [s.name for s in base2novel.eval.sets] == ["base", "novel"]
    assert (fewshot.protocol.kind, fewshot.protocol.shots) == ("fewshot", [2, 4, 8, 16])


def test_zero_shot_and_supervised_recipes_name_their_targets():
    zeroshot = load_config(RECIPES / "zeroshot.yaml")
    assert zeroshot.protocol.kind == "zeroshot" and len(zeroshot.eval.sets) == 9
    assert {s.root for s in zeroshot.eval.sets} == {"data/hmdb51", "data/ucf101", "data/kinetics600"}
    supervised = load_config(RECIPES / "fully_supervised.yaml")
    assert supervised.protocol.kind == "supervised" and supervised.eval.views == "4x3"


def test_every_recipe_key_is_written_out():
    """A recipe that relies on a default hides a hyper-parameter from the reader."""
    import yaml

    def keys(tree, prefix=""):
        return {k for key, value in tree.items() for k in ([f"{prefix}{key}"] + (sorted(keys(value, f"{prefix}{key}.")) if isinstance(value, dict) else []))}

    for recipe in ("base2novel.yaml", "fewshot.yaml", "zeroshot.yaml", "fully_supervised.yaml", "quickstart.yaml"):
        written = keys(yaml.safe_load((RECIPES / recipe).read_text()))
        assert keys(yaml.safe_load(dump_config(Config()))) - written == set(), recipe


def test_overrides_are_typed_by_yaml(tmp_path):
    config = load_config(_recipe(tmp_path, "adapter:\n  bottleneck: 64\n"), ["adapter.blocks=[2, 4]", "model.pretrained=none", "optim.lr=3e-4", "output_dir=null"])
    assert config.adapter.blocks == [2, 4] and config.adapter.bottleneck == 64
    assert config.model.pretrained == "none" and config.optim.lr == 3e-4 and config.output_dir is None


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    with pytest.raises(InputError, match=r"recipe.yaml:3:12: invalid YAML: mapping values are not allowed here"):
        load_config(_recipe(tmp_path, "adapter:\n  bottleneck: 64\n  blocks: x: 2\n"))


def test_unknown_key_lists_valid_keys_and_closest_match(tmp_path):
    with pytest.raises(InputError) as error:
        load_config(_recipe(tmp_path, "seed: 1\nadapter:\n  botleneck: 64\n"))
    message = str(error.value)
    assert "recipe.yaml:3:3: unknown key 'adapter.botleneck'" in message
    assert "Valid keys here: bottleneck, blocks, scale, gradient_scale, temporal" in message
    assert "Did you mean 'bottleneck'?" in message


def test_unknown_override_key_is_reported(tmp_path):
    with pytest.raises(InputError, match=r"\(override\): unknown key 'optim.learning_rate'"):
        load_config(_recipe(tmp_path, ""), ["optim.learning_rate=1"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("adapter:\n  bottleneck: many\n", r"recipe.yaml:2:3: 'adapter.bottleneck' must be an integer; got 'many' \(str\)"),
        ("optim:\n  lr: true\n", r"'optim.lr' must be a number; got True"),
        ("adapter:\n  temporal: sideways\n", r"'adapter.temporal' must be one of grouped, depthwise, none"),
        ("adapter:\n  blocks: 3\n", r"'adapter.blocks' must be a list"),
        ("model: resnet\n", r"'model' must be a mapping"),
    ],
)
def test_wrong_types_say_what_was_expected(tmp_path, text, expected):
    with pytest.raises(InputError, match=expected):
        load_config(_recipe(tmp_path, text))


def test_data_video_backend_and_dense_stride(tmp_path):
    config = load_config(_recipe(tmp_path, "data:\n  sampling: dense\n  dense_stride: 4\n  video_backend: decord\n"))
    assert (config.data.dense_stride, config.data.video_backend) == (4, "decord")
    assert (Config().data.dense_stride, Config().data.video_backend) == (8, "auto")
    assert set(typing.get_args(typing.get_type_hints(DataConfig)["video_backend"])) == set(BACKENDS)
    with pytest.raises(InputError, match=r"recipe.yaml:2:3: 'data.dense_stride' must be at least 1 \(.*\); got 0"):
        load_config(_recipe(tmp_path, "data:\n  dense_stride: 0\n"))
    with pytest.raises(InputError, match=r"\(override\): 'data.dense_stride' must be at least 1"):
        load_config(_recipe(tmp_path, ""), ["data.dense_stride=-8"])
    with pytest.raises(InputError, match=r"'data.video_backend' must be one of auto, pyav, decord; got 'opencv'"):
        load_config(_recipe(tmp_path, "data:\n  video_backend: opencv\n"))
    with pytest.raises(InputError, match=r"unknown key 'data.video_backnd'.*dense_stride.*video_backend.*Did you mean 'video_backend'\?"):
        load_config(_recipe(tmp_path, ""), ["data.video_backnd=pyav"])


def test_missing_recipe_and_bad_override_syntax(tmp_path):
    with pytest.raises(InputError, match="recipe file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="expected key=value"):
        load_config(_recipe(tmp_path, ""), ["adapter.bottleneck"])
