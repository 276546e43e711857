"""Typed run configuration: YAML recipes and `key=value` overrides, validated with precise errors.

The schema is a tree of dataclasses; every field has a default, so a recipe only states what it
changes. Hand-written validation instead of a schema library: errors must name the recipe's line
and column and suggest the closest valid key, which no small library does for us.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from msta_cli.core.config_checks import VIEWS_PATTERN, VIEWS_RULE, check_values
from msta_cli.core.errors import InputError, did_you_mean
from msta_cli.core.recipe_yaml import Locator, read_recipe


@dataclass
class ModelConfig:
    """Which frozen CLIP to adapt."""

    # open_clip model name (e.g. ViT-B-16-quickgelu) or `local-dir:/path` holding open_clip_config.json.
    backbone: str = "ViT-B-16-quickgelu"
    # open_clip pretrained tag (e.g. openai), a local checkpoint file, or "none" for random weights.
    pretrained: str = "openai"
    # Where open_clip caches downloaded weights; null uses its default.
    cache_dir: str | None = None


@dataclass
class AdapterConfig:
    """MSTA adapter hyper-parameters (METHOD.md section 2)."""

    bottleneck: int = 256
    # 1-indexed inclusive range of adapted blocks, the same in both towers.
    blocks: list[int] = field(default_factory=lambda: [1, 12])
    # lambda: weight of the adapter branch in `block(x) + lambda * adapter(ln_1(x))`.
    scale: float = 0.005
    # MMA's trick: adapter weights learn as if scale were 1 while the forward uses `scale`.
    gradient_scale: bool = True
    # grouped: Conv1d(r -> d_v, k=3, groups=r); depthwise: Conv1d(d_v, d_v, k=3, groups=d_v); none.
    temporal: Literal["grouped", "depthwise", "none"] = "grouped"
    # kaiming: METHOD.md 2.7 for every weight. zero: up-projections (spatial, temporal, text) start
    # at zero, so step 0 is exactly the zero-shot model (LoRA-style); needed when scale is large.
    up_init: Literal["kaiming", "zero"] = "kaiming"
    # Ablations. shared: false gives each tower its own r x r projection instead of one shared one.
    shared: bool = True
    # Towers that get adapters: both (MSTA), vision or text only, or none (with finetune: full).
    towers: Literal["both", "vision", "text", "none"] = "both"
    # adapters: frozen backbone (MSTA). full: every backbone weight but the logit scale trains too,
    # the full fine-tuning baseline; its checkpoints hold adapters only, so it is evaluated in-run.
    finetune: Literal["adapters", "full"] = "adapters"


@dataclass
class TextConfig:
    """Prompts that turn class names into text."""

    # Several templates: their normalised embeddings are averaged per class.
    templates: list[str] = field(default_factory=lambda: ["a video of {}."])


@dataclass
class DescriptionsConfig:
    """Class descriptions for the consistency loss: one msta file, or the authors' s/t pair."""

    # msta format: {"class name": {"spatial": [...], "temporal": [...]}, ...}
    file: str | None = None
    # Authors' index-keyed files ({"0": ["...", "..."], ...}) and the labels.csv they index.
    spatial: str | None = None
    temporal: str | None = None
    labels: str | None = None


@dataclass
class LossConfig:
    """L = CE + alpha * L_CC (METHOD.md section 4)."""

    consistency_weight: float = 1.0
    label_smoothing: float = 0.0
    descriptions: DescriptionsConfig = field(default_factory=DescriptionsConfig)


@dataclass
class DataConfig:
    """Where the prepared dataset lives and how clips are sampled and augmented."""

    # Output folder of `msta prepare` (holds dataset.yaml, labels.csv and the split CSVs).
    root: str = "data/hmdb51"
    train_split: str = "train_1.csv"
    train_labels: str = "labels.csv"
    num_frames: int = 8
    # segment: TSN, one frame from each of num_frames equal segments (the MSTA recipe).
    # dense: num_frames frames dense_stride apart from a random start (training) or from evenly
    # spread starts (test views); videos shorter than that span give evenly spread frames.
    sampling: Literal["segment", "dense"] = "segment"
    # Distance in frames between consecutive frames of a dense clip (8: t, t+8, t+16, ...);
    # used only with sampling: dense.
    dense_stride: int = 8
    input_size: int = 224
    # Training videos with a larger short side are shrunk to it while decoding; smaller ones
    # keep their size (the crop is a fraction of the short side, resized to input_size).
    resize_short_side: int = 256
    crop_scales: list[float] = field(default_factory=lambda: [1.0, 0.875, 0.75, 0.66])
    flip_probability: float = 0.5
    color_jitter_probability: float = 0.8
    grayscale_probability: float = 0.2
    # Normalisation comes from the backbone's own preprocessing config; recorded here for audit.
    normalization: Literal["backbone"] = "backbone"
    workers: int = 4
    # Decoder for training and evaluation: auto (PyAV, msta's sparse reader), pyav or decord.
    video_backend: Literal["auto", "pyav", "decord"] = "auto"


@dataclass
class OptimConfig:
    """AdamW with a per-step cosine schedule and linear warm-up (METHOD.md section 5)."""

    epochs: int = 50
    warmup_epochs: int = 5
    lr: float = 1.0e-3
    min_lr_ratio: float = 0.01
    weight_decay: float = 1.0e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1.0e-8
    # Effective batch (clips per optimizer step over all processes).
    batch_size: int = 32
    # Clips per forward pass per process; accumulation covers the rest.
    micro_batch_size: int = 4
    grad_clip_norm: float | None = None
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"


@dataclass
class EvalSet:
    """One test set: a split CSV and the label list its labels index, under the data root."""

    name: str = "test"
    split: str = "test_1.csv"
    labels: str = "labels.csv"
    # A different prepared dataset (zero-shot transfer); null means data.root.
    root: str | None = None
    # clips x crops for this set; null means eval.views.
    views: str | None = None


@dataclass
class EvalConfig:
    """Test-time views, the test sets, and which checkpoint counts as the result."""

    # clips x crops, e.g. "10x3"; auto: each benchmark's own by dataset.yaml's name (HMDB51 10x3,
    # UCF101 5x3, Kinetics 4x3, SSv2 2x3), 10x3 for any other dataset.
    views: str = "auto"
    sets: list[EvalSet] = field(default_factory=lambda: [EvalSet()])
    # best-on-test picks the epoch on the test set itself: the optimistic protocol of the peers.
    model_selection: Literal["last", "best-on-val", "best-on-test"] = "last"
    # Share of the training videos held out for best-on-val (per class, seeded); with val_split,
    # the share of that list's other videos of each training class.
    val_fraction: float = 0.1
    # best-on-val's source: null holds videos out of the training list; a split (relative to
    # data.root, e.g. train_1.csv) validates on its videos outside the training list, as few-shot
    # and base-to-novel runs must (their K shots stay K). val_labels: the label list it indexes.
    val_split: str | None = None
    val_labels: str = "labels.csv"
    # Evaluate every N epochs for model selection (best-*); the final evaluation always runs.
    every_epochs: int = 1
    # Videos per forward pass, per process (under torchrun each process evaluates its share).
    batch_size: int = 4
    # Also evaluate the frozen backbone without adapters (zero-shot CLIP) on the same sets.
    zero_shot_baseline: bool = True


@dataclass
class ProtocolConfig:
    """A whole benchmark protocol as one command: the runs it needs and the table it reports."""

    kind: Literal["single", "base2novel", "fewshot", "zeroshot", "supervised"] = "single"
    # base2novel: one run per seed; `{seed}` in data.train_split names its 16-shot list.
    seeds: list[int] = field(default_factory=lambda: [1])
    # fewshot: one run per K; `{shots}` in data.train_split names its list.
    shots: list[int] = field(default_factory=lambda: [16])


@dataclass
class RunConfig:
    """How a run executes: device, checkpoints, determinism, speed options."""

    device: str = "auto"
    checkpoint_every_steps: int = 0
    log_every_steps: int = 10
    deterministic: bool = False
    compile: bool = False
    activation_checkpointing: bool = False


@dataclass
class Config:
    """A complete run: every hyper-parameter spelled out."""

    name: str = "msta"
    seed: int = 0
    output_dir: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    text: TextConfig = field(default_factory=TextConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    run: RunConfig = field(default_factory=RunConfig)


def load_config(recipe: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe, apply dotted `key=value` overrides, and return a validated Config."""
    path = Path(recipe)
    if path.is_dir():
        raise InputError(f"{path}: a folder; give a recipe file, e.g. recipes/base2novel.yaml")
    if not path.is_file():
        raise InputError(f"{path}: recipe file not found")
    data, locator = read_recipe(path)
    given: dict[str, str] = {}
    for override in overrides:
        key = override.partition("=")[0]
        if key in given:  # as in a recipe, where a key written twice is an error, not "the last wins"
            raise InputError(f"override {override}: {key} is already set by {given[key]}; give it once")
        given[key] = override
        _apply_override(data, override, locator)
    config = _build(Config, data, "", locator)
    check_values(config, locator.where)
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict, for YAML/JSON output of the resolved config."""
    return dataclasses.asdict(config)


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def _apply_override(data: dict, override: str, locator: Locator) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise InputError(f"override {override}: expected key=value, e.g. adapter.bottleneck=128")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(
            f"override {override}: invalid YAML value: {problem}. Quote strings that hold YAML's special "
            """characters, e.g. 'text.templates=["a video of {}."]'"""
        ) from None
    parts = key.split(".")
    if not all(parts):
        raise InputError(f"override {override}: '{key}' has an empty part; keys are dotted names, e.g. adapter.bottleneck")
    locator.set_by_override(key, override, raw)
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
        _merge(node[parts[-1]], value)  # `optim={lr: 1e-4}` changes lr, not every other optim key back to its default
    else:
        node[parts[-1]] = value


def _merge(section: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(section.get(key), dict):
            _merge(section[key], value)
        else:
            section[key] = value


def _build(cls: type, data: Any, prefix: str, locator: Locator) -> Any:
    section = prefix.rstrip(".") or "recipe"
    if not isinstance(data, dict):
        raise InputError(f"{locator.where(section)}: '{section}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            raise InputError(_unknown_key_message(str(key), dotted, list(fields), locator))
        values[key] = _convert(hints[key], value, dotted, locator)
    return cls(**values)


def _unknown_key_message(key: str, dotted: str, valid: list[str], locator: Locator) -> str:
    return f"{locator.where(dotted)}: unknown key '{dotted}'. Valid keys here: {', '.join(valid)}.{did_you_mean(key, valid)}"


def _convert(hint: Any, value: Any, key: str, locator: Locator) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".", locator)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _convert(inner, value, key, locator)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(str(a) for a in args)
            raise InputError(f"{locator.where(key)}: '{key}' must be one of {choices}; got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise InputError(f"{locator.where(key)}: '{key}' must be a list; got {value!r}")
        return [_convert(args[0], item, f"{key}[{index}]", locator) for index, item in enumerate(value)]
    return _convert_scalar(hint, value, key, locator)


def _convert_scalar(hint: type, value: Any, key: str, locator: Locator) -> Any:
    # bool is a subclass of int in Python, so it is rejected explicitly for numeric fields.
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    # PyYAML follows YAML 1.1, which reads `1e-3` (no dot) as a string; users mean a number.
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and type(value) is hint:
        return value
    if hint is str and key.endswith("views") and isinstance(value, (int, float)):
        return _views_read_as_number(value, key, locator)
    expected = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[hint]
    raise InputError(f"{locator.where(key)}: '{key}' must be {expected}; got {value!r} ({type(value).__name__})")


def _views_read_as_number(value: float, key: str, locator: Locator) -> str:
    """YAML 1.1 reads `0x1` as the hexadecimal number 1: take back the text that was written."""
    text = locator.text(key)
    if text is not None and VIEWS_PATTERN.fullmatch(text):
        return text
    raise InputError(
        f"{locator.where(key)}: '{key}' must be {VIEWS_RULE}; YAML read {text or value} as the number {value!r}: "
        f"put views that YAML reads as a number in quotes"
    )
