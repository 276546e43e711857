"""Stage 1: contrastive pre-training of msta-tiny on captioned stills, seeded and logged.

The step count, not a time budget, defines the schedule, so the same seed and step count give
the same weights on the same machine; fresh stills are drawn every step from a generator
seeded by (seed, step), so no dataset is stored and none is reused.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import save

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.files import write_bytes_atomic, write_text_atomic
from msta_cli.core.output_paths import check_output
from msta_cli.core.synthetic import stills
from msta_cli.core.synthetic.renderer import ROTATIONAL_SYMMETRY
from msta_cli.core.synthetic.vocabulary import (
    COLOURS, POSITIONS, SHAPES, SIZES, VOCABULARY_FILE, Caption, CompactTokenizer, vocabulary_text,
)

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
LOG_FILE = "training_log.csv"
SUMMARY_FILE = "pretraining.json"
MEAN = (0.1, 0.1, 0.1)
STD = (0.2, 0.2, 0.2)
CONTEXT_LENGTH = 24
MAX_LOGIT_SCALE = math.log(100.0)
EVAL_SEED_OFFSET = 10_000
MAX_SEED = 2**64 - 1  # torch.manual_seed's limit; numpy's generators take any non-negative seed


@dataclass(frozen=True)
class PretrainOptions:
    """Everything that determines the weights (with the machine's float arithmetic); defaults made the shipped msta-tiny."""

    steps: int = 800
    seed: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    # Shares of each batch in hard-negative groups differing only in position / only in shape.
    position_share: float = 0.5
    shape_share: float = 0.0
    # Weight of an auxiliary loss: a linear head (discarded afterwards) predicts each still's
    # 3 x 3 position cell from its image embedding. 0 is plain contrastive pre-training, which
    # leaves position out of the embedding and so leaves the temporal adapter nothing to order
    # in moving clips (msta-tiny's README).
    position_loss: float = 1.0
    # Weight of a second auxiliary loss: a linear head (discarded too) regresses each still's
    # angle, as (cos, sin) of the angle times the shape's rotational symmetry; circles left out.
    orientation_loss: float = 0.0
    eval_every: int = 250
    eval_images: int = 1000
    # One thread was faster than two on the 2 cores shared with other jobs where msta-tiny was made.
    threads: int = 1
    # "cuda" makes it minutes instead of 17 on one CPU thread; weights then differ from a CPU run's
    # in the last bits (float order), not in what they learn.
    device: str = "cpu"


def check_options(options: PretrainOptions) -> None:
    """Refuse, before any work, the values that would crash a run midway or train a NaN model;
    names each option as `msta pretrain-tiny` spells it. The fields it does not expose are the
    shipped recipe's constants and are not checked."""
    _require("--steps", options.steps, 1)
    _require("--batch-size", options.batch_size, 2)  # a contrastive batch needs a negative
    _require("--seed", options.seed, 0, MAX_SEED)
    _require("--threads", options.threads, 1, os.cpu_count() or 1, limit=" (this machine's CPUs)")
    # AdamW moves every weight by about the learning rate each step: above 1 a run only diverges,
    # and past float32's range torch fails mid-step.
    _require("--lr", options.lr, 0, 1, above=True)
    _require("--position-share", options.position_share, 0, 1)
    _require("--shape-share", options.shape_share, 0, 1)
    if options.position_share + options.shape_share > 1:
        raise InputError(f"--position-share and --shape-share must add up to at most 1; "
                         f"got {options.position_share} + {options.shape_share}")
    _require("--position-loss", options.position_loss, 0)
    _require("--orientation-loss", options.orientation_loss, 0)
    if options.device not in ("cpu", "cuda") or (options.device == "cuda" and not torch.cuda.is_available()):
        raise InputError(f"--device must be cpu or cuda (with a visible GPU); got {options.device!r}")


def _require(flag: str, value: float, low: float, high: float = math.inf, *, above: bool = False, limit: str = "") -> None:
    """Refuse `value` outside [low, high] ((low, high] when `above`) or infinite; NaN fails every comparison."""
    if (low < value if above else low <= value) and value <= high and value < math.inf:
        return
    allowed = f"greater than {low}" if above else f"at least {low}"
    if high < math.inf:
        allowed += f" and at most {high}{limit}"
    elif isinstance(value, float):
        allowed += " and finite"
    raise InputError(f"{flag} must be {allowed}; got {value}")


def model_config(vocab_size: int) -> dict:
    """The tiny CLIP: 4-layer width-128 towers, 64 px input, patch 8 (about 1.7 M parameters)."""
    return {
        "embed_dim": 128,
        "vision_cfg": {"image_size": stills.IMAGE_SIZE, "patch_size": 8, "width": 128, "layers": 4, "head_width": 32},
        "text_cfg": {"context_length": CONTEXT_LENGTH, "vocab_size": vocab_size, "width": 128, "heads": 4, "layers": 4},
    }


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalised float (N, 3, H, W)."""
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the batch. Identical captions in a batch are rare enough to ignore."""
    logits = logit_scale * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


def orientation_loss(predicted: torch.Tensor, captions: list[Caption], angles: list[float]) -> torch.Tensor:
    """Mean squared error of (cos, sin)(symmetry x angle): one target per distinguishable pose."""
    symmetry = torch.tensor([float(ROTATIONAL_SYMMETRY[caption.shape]) for caption in captions])
    turned = torch.deg2rad(torch.tensor(angles)) * symmetry
    target = torch.stack([turned.cos(), turned.sin()], dim=1).to(predicted)
    keep = (symmetry > 0).to(predicted.device)
    if not keep.any():
        return predicted.sum() * 0.0
    return F.mse_loss(predicted[keep], target[keep])


def learning_rate(step: int, options: PretrainOptions) -> float:
    if step < options.warmup_steps:
        return options.lr * (step + 1) / options.warmup_steps
    progress = (step - options.warmup_steps) / max(1, options.steps - options.warmup_steps)
    return options.lr * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def zero_shot_accuracy(model: open_clip.CLIP, tokenizer: CompactTokenizer, seed: int, count: int) -> dict[str, float]:
    """Attribute accuracy on held-out stills; each value's prompt is the mean of all full captions that carry it."""
    rng = np.random.default_rng([seed, EVAL_SEED_OFFSET])
    captions = [stills.random_caption(rng) for _ in range(count)]
    device = next(model.parameters()).device
    images = to_tensor(np.stack([stills.still(caption, rng) for caption in captions])).to(device)
    model.eval()
    image_embeddings = torch.cat([F.normalize(model.encode_image(chunk), dim=-1) for chunk in images.split(250)])
    every = [Caption(s, c, z, p) for s in SHAPES for c in COLOURS for z in SIZES for p in POSITIONS]
    text_embeddings = F.normalize(model.encode_text(tokenizer([caption.full() for caption in every]).to(device)), dim=-1)
    result = {}
    for attribute, values in (("shape", SHAPES), ("colour", list(COLOURS)), ("size", SIZES), ("position", POSITIONS)):
        prototypes = torch.stack(
            [text_embeddings[[getattr(c, attribute) == value for c in every]].mean(dim=0) for value in values]
        )
        predicted = (image_embeddings @ F.normalize(prototypes, dim=-1).t()).argmax(dim=1)
        truth = torch.tensor([list(values).index(getattr(c, attribute)) for c in captions], device=device)
        result[attribute] = 100.0 * (predicted == truth).float().mean().item()
        if attribute == "position":
            result["column"] = 100.0 * (predicted % 3 == truth % 3).float().mean().item()
            result["row"] = 100.0 * (predicted // 3 == truth // 3).float().mean().item()
    predicted = (image_embeddings @ text_embeddings.t()).argmax(dim=1)
    exact = [every[i] == caption for i, caption in zip(predicted.tolist(), captions)]
    result["exact"] = 100.0 * sum(exact) / len(exact)
    model.train()
    return {key: round(value, 1) for key, value in result.items()}


def _optimizer(model: torch.nn.Module, options: PretrainOptions, heads: torch.nn.ModuleDict) -> torch.optim.AdamW:
    named = list(model.named_parameters()) + list(heads.named_parameters(prefix="heads"))
    decay = [p for n, p in named if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in named if not (p.ndim >= 2 and "embedding" not in n)]
    groups = [{"params": decay, "weight_decay": options.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=options.lr, betas=(0.9, 0.98), eps=1e-6)


def pretrain(out: Path, options: PretrainOptions, on_log: Callable[[dict], None] = lambda row: None) -> dict:
    """Train msta-tiny into `out` (an open_clip local-dir folder plus vocab, log and summary); returns the summary.

    Options and `out` are checked first, so a mistake costs nothing; `out` is created only once
    the weights are trained and finite, so a failed run leaves no empty folder behind.
    """
    check_options(options)
    check_output(out, "OUT", folder=True)
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    tokenizer = CompactTokenizer.build(vocabulary_text(), CONTEXT_LENGTH)
    config = model_config(len(tokenizer))
    device = torch.device(options.device)
    model = open_clip.CLIP(**config).to(device)
    # Contrastive pre-training alone leaves position out of the image embedding (a linear probe
    # reads it at chance), though a supervised head learns it in a few hundred steps. No caption
    # names an angle, so without a head the image embedding need not hold one either.
    heads = torch.nn.ModuleDict()
    if options.position_loss:
        heads["position"] = torch.nn.Linear(config["embed_dim"], len(POSITIONS))
    if options.orientation_loss:
        heads["orientation"] = torch.nn.Linear(config["embed_dim"], 2)
    heads.to(device)
    optimizer = _optimizer(model, options, heads)
    rows: list[dict] = []
    started = time.monotonic()
    for step in range(options.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, options)
        images, texts, captions, angles = stills.batch(
            np.random.default_rng([options.seed, step]), options.batch_size, options.position_share, options.shape_share
        )
        image_features = model.encode_image(to_tensor(images).to(device))
        text_features = model.encode_text(tokenizer(texts).to(device))
        loss = contrastive_loss(image_features, text_features, model.logit_scale.exp())
        if "position" in heads:
            cells = torch.tensor([POSITIONS.index(caption.position) for caption in captions], device=device)
            loss = loss + options.position_loss * F.cross_entropy(heads["position"](image_features), cells)
        if "orientation" in heads:
            loss = loss + options.orientation_loss * orientation_loss(heads["orientation"](image_features), captions, angles)
        if not torch.isfinite(loss):
            raise _diverged(step + 1, f"the loss is {loss.item()}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        last = step + 1 == options.steps
        if last and not all(parameter.isfinite().all() for parameter in model.parameters()):
            raise _diverged(step + 1, "its update left weights that are not finite")
        if last or (step + 1) % options.eval_every == 0 or step % 25 == 0:
            row = {"step": step + 1, "seconds": round(time.monotonic() - started, 1), "loss": round(loss.item(), 4),
                   "lr": learning_rate(step, options), "logit_scale": round(model.logit_scale.exp().item(), 2)}
            if last or (step + 1) % options.eval_every == 0:
                row |= zero_shot_accuracy(model, tokenizer, options.seed, options.eval_images)
            rows.append(row)
            on_log(row)
    summary = {"options": asdict(options), "steps": options.steps, "wall_clock_seconds": round(time.monotonic() - started, 1),
               "final": rows[-1], "torch": torch.__version__, "open_clip": open_clip.__version__,
               "parameters": sum(p.numel() for p in model.parameters()), "device_name": _device_name(device, options.threads)}
    _write(out, model, config, tokenizer, rows, summary)
    return summary


def _diverged(step: int, what: str) -> MstaError:
    """Training stops at the first non-finite loss or weight: every later step and the model written would be NaN."""
    return MstaError(f"training diverged at step {step}: {what}; nothing was written (a lower --lr or loss weight may help)")


def _device_name(device: torch.device, threads: int) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU, {threads} threads"


def _write(out: Path, model: torch.nn.Module, config: dict, tokenizer: CompactTokenizer, rows: list[dict], summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    preprocess = {"size": stills.IMAGE_SIZE, "mean": list(MEAN), "std": list(STD), "interpolation": "bilinear"}
    write_text_atomic(out / CONFIG_FILE, json.dumps({"model_cfg": config, "preprocess_cfg": preprocess}, indent=2))
    write_text_atomic(out / VOCABULARY_FILE, tokenizer.to_json())
    # safetensors' save_file renames its own 0600 temporary file; msta's writer keeps the umask's mode.
    write_bytes_atomic(out / WEIGHTS_FILE, save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))
    table = io.StringIO()
    fields = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(table, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / LOG_FILE, table.getvalue())
    write_text_atomic(out / SUMMARY_FILE, json.dumps(summary, indent=2))
