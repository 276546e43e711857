"""Value checks for a loaded Config: every number in its range, every list usable.

Types are checked while the recipe is read (msta_cli.core.config); these checks refuse values of
the right type that still cannot work (a zero bottleneck, a probability of 5, no test sets), so
the mistake stops the command at load time with the recipe's line instead of a traceback or a
silently meaningless run hours later.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from typing import TYPE_CHECKING

from msta_cli.core.errors import InputError

if TYPE_CHECKING:
    from msta_cli.core.config import Config

# eval.views and eval.sets[i].views: clips x crops; the evaluator takes 1 or 3 crops.
VIEWS_PATTERN = re.compile(r"(\d+)[xX](\d+)")
VIEWS_RULE = "CLIPSxCROPS with clips at least 1 and crops 1 or 3, e.g. 4x3, or auto (the benchmark's own)"
# The placeholder each protocol fills in data.train_split: one list per seed, or per shot count.
SPLIT_PLACEHOLDERS = {"base2novel": ("seed", "protocol.seeds"), "fewshot": ("shots", "protocol.shots")}
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
# A zero-shot test set named DATASET-N is split N of DATASET (recipes/zeroshot.yaml: hmdb51-1 ...).
ZERO_SHOT_SET = re.compile(r"(?P<target>.+?)(?:-(?P<number>\d+))?")


def zero_shot_split(name: str) -> tuple[str, int]:
    """(target dataset, split number) of a zero-shot test set; a name without -N is split 1."""
    match = ZERO_SHOT_SET.fullmatch(name)
    return match["target"], int(match["number"] or 1)


def check_values(config: Config, where: Callable[[str], str]) -> None:
    """Refuse out-of-range values; `where(key)` names the recipe line or the override of a key."""
    checks = _Checks(where)
    checks.integer("seed", config.seed, 0, 2**32 - 1, "numpy's seed range")
    _check_adapter(config, checks)
    _check_text(config, checks)
    _check_loss(config, checks)
    _check_data(config, checks)
    _check_optim(config, checks)
    _check_eval(config, checks)
    _check_protocol(config, checks)
    if not DEVICE_PATTERN.fullmatch(config.run.device):
        checks.fail("run.device", "auto, cpu, cuda or cuda:N", config.run.device)
    checks.integer("run.checkpoint_every_steps", config.run.checkpoint_every_steps, 0, note="0 turns step checkpoints off")
    checks.integer("run.log_every_steps", config.run.log_every_steps, 1)


def views_error(key: str, views: str) -> str | None:
    """Why a views spec is neither CLIPSxCROPS nor auto, or None when it is fine."""
    match = VIEWS_PATTERN.fullmatch(views)
    if views.lower() == "auto" or match and int(match.group(1)) >= 1 and int(match.group(2)) in (1, 3):
        return None
    return f"'{key}' must be {VIEWS_RULE}; got {views!r}"


def check_input_size(config: Config, backbone_size: int) -> None:
    """The ViT's position embeddings fix its input size: another data.input_size would only fail
    at the first forward pass (a tensor size mismatch), after the data has been read."""
    if config.data.input_size != backbone_size:
        raise InputError(
            f"data.input_size {config.data.input_size} does not match the input size of model.backbone "
            f"'{config.model.backbone}', {backbone_size} px (from its open_clip preprocessing config); "
            f"set data.input_size={backbone_size}"
        )


class _Checks:
    """Range checks that raise InputError at the key's recipe line, saying what is allowed."""

    def __init__(self, where: Callable[[str], str]):
        self.where = where

    def fail(self, key: str, rule: str, value: object) -> None:
        raise InputError(f"{self.where(key)}: '{key}' must be {rule}; got {value!r}")

    def integer(self, key: str, value: int, low: int, high: int | None = None, note: str = "") -> None:
        if value < low or (high is not None and value > high):
            rule = f"at least {low}" if high is None else f"between {low} and {high}"
            self.fail(key, f"{rule}{f' ({note})' if note else ''}", value)

    def number(self, key: str, value: float, low: float, high: float = math.inf, *, open_low: bool = False,
               open_high: bool = False, note: str = "") -> None:
        """A finite float in [low, high]; open_low / open_high exclude the bound."""
        too_low = value <= low if open_low else value < low
        too_high = value >= high if open_high else value > high
        if not math.isfinite(value) or too_low or too_high:
            if high == math.inf:
                rule = f"a finite number {'above' if open_low else 'at least'} {low}"
            else:
                rule = f"a number in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
            self.fail(key, f"{rule}{f' ({note})' if note else ''}", value)

    def probability(self, key: str, value: float) -> None:
        self.number(key, value, 0.0, 1.0, note="a probability")

    def not_empty(self, key: str, values: list, what: str) -> None:
        if not values:
            self.fail(key, f"a list of at least one {what}", values)

    def unique(self, key: str, values: list, what: str) -> None:
        for index, value in enumerate(values):
            if value in values[:index]:
                self.fail(f"{key}[{index}]", f"unique: {what} {value!r} is listed twice", value)


def _check_adapter(config: Config, checks: _Checks) -> None:
    adapter = config.adapter
    checks.integer("adapter.bottleneck", adapter.bottleneck, 1, note="the adapter width r")
    if len(adapter.blocks) != 2:
        checks.fail("adapter.blocks", "[start, end] (1-indexed, inclusive), e.g. [1, 12]", adapter.blocks)
    start, end = adapter.blocks
    checks.integer("adapter.blocks[0]", start, 1, note="blocks are 1-indexed")
    checks.integer("adapter.blocks[1]", end, start, note="the end block is at least the start block")
    checks.number("adapter.scale", adapter.scale, 0.0, open_low=True, note="lambda, the weight of the adapter branch")


def _check_text(config: Config, checks: _Checks) -> None:
    checks.not_empty("text.templates", config.text.templates, "template")
    for index, template in enumerate(config.text.templates):
        key = f"text.templates[{index}]"
        try:
            same = template.format("jumping") == template.format("running")
        except (IndexError, KeyError, ValueError):
            same = True
        if same:
            checks.fail(key, "a template with {} where the class name goes, e.g. 'a video of {}.'", template)


def _check_loss(config: Config, checks: _Checks) -> None:
    checks.number("loss.consistency_weight", config.loss.consistency_weight, 0.0, note="0 turns the consistency loss off")
    checks.number("loss.label_smoothing", config.loss.label_smoothing, 0.0, 1.0, open_high=True, note="0 is no smoothing")


def _check_data(config: Config, checks: _Checks) -> None:
    data = config.data
    checks.integer("data.num_frames", data.num_frames, 1)
    checks.integer("data.dense_stride", data.dense_stride, 1, note="the distance in frames between consecutive frames of a dense clip")
    checks.integer("data.input_size", data.input_size, 1, note="pixels; the backbone's input size")
    checks.integer("data.resize_short_side", data.resize_short_side, 1, note="pixels")
    checks.not_empty("data.crop_scales", data.crop_scales, "scale")
    for index, scale in enumerate(data.crop_scales):
        checks.number(f"data.crop_scales[{index}]", scale, 0.0, 1.0, open_low=True, note="a fraction of the short side")
    checks.probability("data.flip_probability", data.flip_probability)
    checks.probability("data.color_jitter_probability", data.color_jitter_probability)
    checks.probability("data.grayscale_probability", data.grayscale_probability)
    checks.integer("data.workers", data.workers, 0, note="0 decodes in the main process")


def _check_optim(config: Config, checks: _Checks) -> None:
    optim = config.optim
    checks.integer("optim.epochs", optim.epochs, 1)
    checks.integer("optim.warmup_epochs", optim.warmup_epochs, 0, note="0 is no warm-up")
    checks.number("optim.lr", optim.lr, 0.0, note="0 freezes the adapters: the pipeline runs, nothing is learnt")
    checks.number("optim.min_lr_ratio", optim.min_lr_ratio, 0.0, 1.0, note="the final learning rate as a share of optim.lr")
    checks.number("optim.weight_decay", optim.weight_decay, 0.0, note="0 is no decay")
    if len(optim.betas) != 2:
        checks.fail("optim.betas", "[beta1, beta2], e.g. [0.9, 0.98]", optim.betas)
    for index, beta in enumerate(optim.betas):
        checks.number(f"optim.betas[{index}]", beta, 0.0, 1.0, open_high=True, note="AdamW's averaging factors")
    checks.number("optim.eps", optim.eps, 0.0, open_low=True)
    checks.integer("optim.batch_size", optim.batch_size, 1, note="clips per optimizer step over all processes")
    checks.integer("optim.micro_batch_size", optim.micro_batch_size, 1, note="clips per forward pass per process")
    if optim.grad_clip_norm is not None:
        checks.number("optim.grad_clip_norm", optim.grad_clip_norm, 0.0, open_low=True, note="or null for no clipping")


def _check_eval(config: Config, checks: _Checks) -> None:
    evaluation = config.eval
    for key, views in [("eval.views", evaluation.views)] + [
        (f"eval.sets[{index}].views", eval_set.views) for index, eval_set in enumerate(evaluation.sets)
    ]:
        message = views_error(key, views) if views is not None else None
        if message:
            raise InputError(f"{checks.where(key)}: {message}")
    checks.not_empty("eval.sets", evaluation.sets, "test set")
    names = [eval_set.name for eval_set in evaluation.sets]
    checks.unique("eval.sets", names, "the set name")
    for index, name in enumerate(names):
        if not name:
            checks.fail(f"eval.sets[{index}].name", "a non-empty name", name)
    if config.protocol.kind == "zeroshot":
        splits = [zero_shot_split(name) for name in names]
        for index, split in enumerate(splits):
            if split in splits[:index]:
                other = names[splits.index(split)]
                checks.fail(
                    f"eval.sets[{index}].name", f"a name that is not split {split[1]} of {split[0]} again (as "
                    f"{other!r} is: the zero-shot table reads DATASET-N as split N of DATASET)", names[index],
                )
    checks.number("eval.val_fraction", evaluation.val_fraction, 0.0, 1.0, open_low=True, open_high=True,
                  note="the share of training videos held out for best-on-val")
    checks.integer("eval.every_epochs", evaluation.every_epochs, 1)
    checks.integer("eval.batch_size", evaluation.batch_size, 1, note="videos per forward pass per process")


def _check_protocol(config: Config, checks: _Checks) -> None:
    protocol = config.protocol
    checks.not_empty("protocol.seeds", protocol.seeds, "seed")
    checks.unique("protocol.seeds", protocol.seeds, "seed")
    for index, seed in enumerate(protocol.seeds):
        checks.integer(f"protocol.seeds[{index}]", seed, 0, 2**32 - 1, "numpy's seed range")
    checks.not_empty("protocol.shots", protocol.shots, "shot count")
    checks.unique("protocol.shots", protocol.shots, "shot count")
    for index, shots in enumerate(protocol.shots):
        checks.integer(f"protocol.shots[{index}]", shots, 1, note="training videos per class")
    _check_split_placeholders(config, checks)


def _check_split_placeholders(config: Config, checks: _Checks) -> None:
    """data.train_split may hold only the placeholder its protocol fills, which would otherwise
    surface as a KeyError after the recipe was accepted."""
    split, kind = config.data.train_split, config.protocol.kind
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(split) if field is not None}
    except ValueError as error:
        checks.fail("data.train_split", f"a file name, with {{seed}} or {{shots}} for the protocols that fill them ({error})", split)
    allowed = SPLIT_PLACEHOLDERS.get(kind)
    unfilled = sorted(fields - {allowed[0]} if allowed else fields)
    if unfilled:
        fills = f"protocol.kind {kind} fills only {{{allowed[0]}}} (one run per {allowed[1]})" if allowed else (
            f"protocol.kind {kind} trains once and fills none")
        names = ", ".join(f"{{{field}}}" for field in unfilled)
        checks.fail("data.train_split", f"one list without {names}: {fills}", split)
