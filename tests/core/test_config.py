import re
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
    assert supervised.protocol.kind == "supervised" and supervised.eval.views == "auto"


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
    with pytest.raises(InputError, match=r"^override optim.learning_rate=1: unknown key 'optim.learning_rate'"):
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nmodel:\n  backbone: [msta-tiny\n", r"recipe.yaml:3:13: invalid YAML: not closed by the end of the file \(while parsing a flow sequence: expected ',' or '\]'"),
        ("name: x\nmodel:\n  backbone: \"msta-tiny\n", r"recipe.yaml:3:13: invalid YAML: not closed by the end of the file \(while scanning a quoted scalar: found unexpected end of stream"),
    ],
)
def test_an_unclosed_bracket_or_quote_is_reported_where_it_opens(tmp_path, text, expected):
    with pytest.raises(InputError, match=expected):
        load_config(_recipe(tmp_path, text))


def test_data_video_backend_and_dense_stride(tmp_path):
    config = load_config(_recipe(tmp_path, "data:\n  sampling: dense\n  dense_stride: 4\n  video_backend: decord\n"))
    assert (config.data.dense_stride, config.data.video_backend) == (4, "decord")
    assert (Config().data.dense_stride, Config().data.video_backend) == (8, "auto")
    assert set(typing.get_args(typing.get_type_hints(DataConfig)["video_backend"])) == set(BACKENDS)
    with pytest.raises(InputError, match=r"recipe.yaml:2:3: 'data.dense_stride' must be at least 1 \(.*\); got 0"):
        load_config(_recipe(tmp_path, "data:\n  dense_stride: 0\n"))
    with pytest.raises(InputError, match=r"^override data.dense_stride=-8: 'data.dense_stride' must be at least 1"):
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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.epochs=0", "'optim.epochs' must be at least 1; got 0"),
        ("optim.epochs=-3", "'optim.epochs' must be at least 1"),
        ("data.flip_probability=5", r"'data.flip_probability' must be a number in \[0.0, 1.0\] \(a probability\)"),
        ("data.color_jitter_probability=-0.1", "'data.color_jitter_probability' must be a number in"),
        ("data.grayscale_probability=1.5", "'data.grayscale_probability' must be a number in"),
        ("adapter.bottleneck=0", "'adapter.bottleneck' must be at least 1"),
        ("adapter.bottleneck=-4", "'adapter.bottleneck' must be at least 1"),
        ("adapter.blocks=[0, 2]", r"'adapter.blocks\[0\]' must be at least 1"),
        ("adapter.blocks=[3, 2]", r"'adapter.blocks\[1\]' must be at least 3"),
        ("adapter.blocks=[3]", r"'adapter.blocks' must be \[start, end\]"),
        ("adapter.scale=0", "'adapter.scale' must be a finite number above 0.0"),
        ("data.num_frames=0", "'data.num_frames' must be at least 1"),
        ("optim.lr=-1", r"'optim.lr' must be a finite number at least 0.0 \(0 freezes the adapters"),
        ("optim.lr=nan", r"'optim.lr' must be a finite number at least 0.0 \(.*\); got nan"),
        ("optim.lr=.inf", "'optim.lr' must be a finite number"),
        ("optim.micro_batch_size=0", "'optim.micro_batch_size' must be at least 1"),
        ("run.device=x", "'run.device' must be auto, cpu, cuda or cuda:N; got 'x'"),
        ("optim.batch_size=0", "'optim.batch_size' must be at least 1"),
        ("optim.warmup_epochs=-1", r"'optim.warmup_epochs' must be at least 0 \(0 is no warm-up\)"),
        ("optim.min_lr_ratio=2", "'optim.min_lr_ratio' must be a number in"),
        ("optim.weight_decay=-1", "'optim.weight_decay' must be a finite number at least 0.0"),
        ("optim.betas=[2, 3]", r"'optim.betas\[0\]' must be a number in \[0.0, 1.0\)"),
        ("optim.betas=[0.9]", r"'optim.betas' must be \[beta1, beta2\]"),
        ("optim.eps=0", "'optim.eps' must be a finite number above 0.0"),
        ("optim.grad_clip_norm=0", "'optim.grad_clip_norm' must be a finite number above 0.0 .or null"),
        ("run.log_every_steps=0", "'run.log_every_steps' must be at least 1"),
        ("run.checkpoint_every_steps=-1", r"'run.checkpoint_every_steps' must be at least 0 \(0 turns step checkpoints off\)"),
        ("eval.every_epochs=0", "'eval.every_epochs' must be at least 1"),
        ("eval.batch_size=0", "'eval.batch_size' must be at least 1"),
        ("eval.sets=[]", "'eval.sets' must be a list of at least one test set"),
        ("eval.sets=[{name: a}, {name: a}]", r"'eval.sets\[1\]' must be unique: the set name 'a' is listed twice"),
        ("eval.val_fraction=2", r"'eval.val_fraction' must be a number in \(0.0, 1.0\)"),
        ("data.workers=-1", r"'data.workers' must be at least 0 \(0 decodes in the main process\)"),
        ("data.input_size=0", "'data.input_size' must be at least 1"),
        ("data.resize_short_side=0", "'data.resize_short_side' must be at least 1"),
        ("data.crop_scales=[]", "'data.crop_scales' must be a list of at least one scale"),
        ("data.crop_scales=[1.0, 1.5]", r"'data.crop_scales\[1\]' must be a number in \(0.0, 1.0\]"),
        ("data.crop_scales=[0]", r"'data.crop_scales\[0\]' must be a number in \(0.0, 1.0\]"),
        ("loss.label_smoothing=2", r"'loss.label_smoothing' must be a number in \[0.0, 1.0\)"),
        ("loss.consistency_weight=-1", "'loss.consistency_weight' must be a finite number at least 0.0"),
        ("protocol.seeds=[]", "'protocol.seeds' must be a list of at least one seed"),
        ("protocol.seeds=[1, 1]", r"'protocol.seeds\[1\]' must be unique"),
        ("protocol.shots=[]", "'protocol.shots' must be a list of at least one shot count"),
        ("protocol.shots=[0]", r"'protocol.shots\[0\]' must be at least 1"),
        ("seed=-1", "'seed' must be between 0 and 4294967295"),
        ("text.templates=[]", "'text.templates' must be a list of at least one template"),
        ("text.templates=[a video]", r"'text.templates\[0\]' must be a template with \{\}"),
        ("eval.views=3x", "'eval.views' must be CLIPSxCROPS with clips at least 1 and crops 1 or 3, e.g. 4x3, or auto .the benchmark's own.; got '3x'"),
        ("eval.views=2x2", "'eval.views' must be CLIPSxCROPS"),
        ("data.train_split=train_s{seed}.csv", r"'data.train_split' must be one list without \{seed\}: protocol.kind single trains once"),
        ("data.train_split=train_{x.csv", r"'data.train_split' must be a file name, with \{seed\} or \{shots\}"),
    ],
)
def test_out_of_range_values_name_the_override_and_the_allowed_range(tmp_path, override, message):
    with pytest.raises(InputError, match=rf"^override {re.escape(override)}: .*{message}"):
        load_config(_recipe(tmp_path, ""), [override])


def test_zero_shot_set_names_that_would_share_a_table_cell_are_refused(tmp_path):
    text = "protocol:\n  kind: zeroshot\neval:\n  sets:\n    - {name: ucf101, split: a.csv}\n    - {name: ucf101-1, split: b.csv}\n"
    with pytest.raises(InputError, match=r"'eval.sets\[1\].name' must be a name that is not split 1 of ucf101 again \(as 'ucf101' is"):
        load_config(_recipe(tmp_path, text))
    assert load_config(_recipe(tmp_path, text.replace("ucf101-1", "ucf101-2")))


def test_each_protocol_fills_only_its_own_placeholder_in_the_training_list(tmp_path):
    base2novel = load_config(_recipe(tmp_path, "protocol:\n  kind: base2novel\ndata:\n  train_split: train_s{seed}.csv\n"))
    assert base2novel.data.train_split == "train_s{seed}.csv"
    assert load_config(_recipe(tmp_path, "protocol:\n  kind: fewshot\ndata:\n  train_split: train_k{shots}.csv\n"))
    with pytest.raises(InputError, match=r"recipe.yaml:4:3: .*fewshot fills only \{shots\} \(one run per protocol.shots\)"):
        load_config(_recipe(tmp_path, "protocol:\n  kind: fewshot\ndata:\n  train_split: train_s{seed}.csv\n"))


def test_range_errors_in_a_recipe_point_at_the_value(tmp_path):
    text = "optim:\n  lr: 0.001\n  epochs: 0\ndata:\n  crop_scales: [1.0,\n    2.0]\neval:\n  sets:\n    - {name: a, views: 0x3}\n"
    with pytest.raises(InputError, match=r"recipe.yaml:3:3: 'optim.epochs' must be at least 1"):
        load_config(_recipe(tmp_path, text), ["data.crop_scales=[1.0]"])
    with pytest.raises(InputError, match=r"recipe.yaml:6:5: 'data.crop_scales\[1\]' must be a number in"):
        load_config(_recipe(tmp_path, text), ["optim.epochs=1"])
    with pytest.raises(InputError, match=r"recipe.yaml:9:17: 'eval.sets\[0\].views' must be CLIPSxCROPS.*got '0x3'"):
        load_config(_recipe(tmp_path, text), ["optim.epochs=1", "data.crop_scales=[1.0]"])


def test_override_errors_name_the_override_not_a_recipe_line(tmp_path):
    recipe = _recipe(tmp_path, "adapter:\n  bottleneck: 64\noptim:\n  lr: 0.001\n")
    with pytest.raises(InputError, match=r"^override adapter.botleneck=3: unknown key 'adapter.botleneck'.*Did you mean 'bottleneck'"):
        load_config(recipe, ["adapter.botleneck=3"])
    with pytest.raises(InputError, match=r"^override optim.lr=abc: 'optim.lr' must be a number; got 'abc'"):
        load_config(recipe, ["optim.lr=abc"])
    with pytest.raises(InputError, match=r"^override adapter={bottleneck: 0}: 'adapter.bottleneck' must be at least 1"):
        load_config(recipe, ["adapter={bottleneck: 0}"])
    with pytest.raises(InputError, match=r"^override adapter.bottleneck=0: "):
        load_config(recipe, ["adapter={bottleneck: 8}", "adapter.bottleneck=0"])


def test_invalid_yaml_in_an_override_is_reported(tmp_path):
    with pytest.raises(InputError, match=r"^override text.templates=\[a video of \{\}.\]: invalid YAML value: .*Quote strings"):
        load_config(_recipe(tmp_path, ""), ["text.templates=[a video of {}.]"])
    config = load_config(_recipe(tmp_path, ""), ['text.templates=["a video of {}."]'])
    assert config.text.templates == ["a video of {}."]


def test_non_utf8_recipe_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InputError, match=r"recipe.yaml: not UTF-8 text \(byte 9 is 0xe9\)"):
        load_config(path)


def test_control_characters_are_invalid_yaml_not_a_traceback(tmp_path):
    with pytest.raises(InputError, match=r"recipe.yaml:2: invalid YAML: special characters are not allowed"):
        load_config(_recipe(tmp_path, "seed: 1\nname: a\x07b\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nname: y\n", r"recipe.yaml:2:1: duplicate key 'name' \(first at line 1\)"),
        ("optim:\n  lr: 0.1\nseed: 1\noptim:\n  epochs: 2\n", r"recipe.yaml:4:1: duplicate key 'optim' \(first at line 1\)"),
        ("eval:\n  sets:\n    - {name: a, name: b}\n", r"recipe.yaml:3:17: duplicate key 'eval.sets\[0\].name' \(first at line 3\)"),
    ],
)
def test_duplicate_keys_are_refused_with_both_lines(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        load_config(_recipe(tmp_path, text))


def test_merge_keys_may_override_merged_values(tmp_path):
    text = "eval:\n  sets:\n    - &base {name: a, split: s.csv}\n    - {<<: *base, name: b}\n"
    assert [s.name for s in load_config(_recipe(tmp_path, text)).eval.sets] == ["a", "b"]


def test_views_that_yaml_reads_as_hex_keep_their_text(tmp_path):
    with pytest.raises(InputError, match=r"recipe.yaml:2:3: 'eval.views' must be CLIPSxCROPS.*; got '0x1'"):
        load_config(_recipe(tmp_path, "eval:\n  views: 0x1\n"))
    with pytest.raises(InputError, match=r"^override eval.views=0x3: 'eval.views' must be CLIPSxCROPS.*; got '0x3'"):
        load_config(_recipe(tmp_path, ""), ["eval.views=0x3"])
    with pytest.raises(InputError, match=r"'eval.views' must be CLIPSxCROPS.*YAML read 4 as the number 4: put views"):
        load_config(_recipe(tmp_path, "eval:\n  views: 4\n"))
    assert load_config(_recipe(tmp_path, "eval:\n  views: 4X3\n")).eval.views == "4X3"


def test_a_typo_in_a_list_item_points_at_the_item(tmp_path):
    text = "eval:\n  sets:\n    - {name: a}\n    - name: b\n      splt: b.csv\n"
    with pytest.raises(InputError, match=r"recipe.yaml:5:7: unknown key 'eval.sets\[1\].splt'.*Did you mean 'split'"):
        load_config(_recipe(tmp_path, text))


def test_an_override_of_a_whole_section_changes_only_the_keys_it_names(tmp_path):
    recipe = _recipe(tmp_path, "optim:\n  epochs: 3\n  lr: 0.01\nadapter:\n  bottleneck: 8\n  blocks: [1, 2]\n")
    config = load_config(recipe, ["optim={lr: 0.005}", "adapter={bottleneck: 4}"])
    assert (config.optim.epochs, config.optim.lr) == (3, 0.005)
    assert (config.adapter.bottleneck, config.adapter.blocks) == (4, [1, 2])


def test_a_key_given_twice_in_the_overrides_is_an_error_as_in_a_recipe(tmp_path):
    with pytest.raises(InputError, match=r"^override optim.lr=2e-3: optim.lr is already set by optim.lr=1e-3; give it once$"):
        load_config(_recipe(tmp_path, ""), ["optim.lr=1e-3", "optim.lr=2e-3"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("a..b=1", r"^override a..b=1: 'a..b' has an empty part; keys are dotted names"),
        ("optim..lr=1", r"^override optim..lr=1: 'optim..lr' has an empty part"),
        ("a.b=", r"^override a.b=: unknown key 'a'"),
        ("optim.lr.x=1", r"^override optim.lr.x=1: 'optim.lr' must be a number"),
    ],
)
def test_a_bad_override_key_is_reported_against_the_override_not_the_recipe(tmp_path, override, message):
    with pytest.raises(InputError, match=message):
        load_config(_recipe(tmp_path, "optim:\n  lr: 0.01\n"), [override])


def test_a_folder_given_as_the_recipe_is_named_as_such(tmp_path):
    with pytest.raises(InputError, match=r": a folder; give a recipe file, e.g. recipes/base2novel.yaml$"):
        load_config(tmp_path)
