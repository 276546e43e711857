"""Adapter checkpoints: `adapter.safetensors` + `adapter_config.json`, the PEFT-style pair.

Only adapter weights are stored (a few MB); the config names the backbone they were trained on
so that loading them anywhere else is an error instead of a silent mismatch.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import msta_cli
from msta_cli.core.backbone import TINY, tiny_weights_digest
from msta_cli.core.config import AdapterConfig, Config, ModelConfig, TextConfig
from msta_cli.core.errors import InputError
from msta_cli.core.files import atomic_path, write_text_atomic
from msta_cli.core.model import MstaModel, create_model

WEIGHTS_FILE = "adapter.safetensors"
CONFIG_FILE = "adapter_config.json"
FORMAT = "msta-adapter/1"


def save_adapter(model: MstaModel, directory: str | Path) -> Path:
    """Write the pair atomically (temp file, then rename), so a crash never leaves half a file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in model.adapters.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as temporary:
        save_file(weights, temporary, metadata={"format": FORMAT})
    write_text_atomic(directory / CONFIG_FILE, json.dumps(adapter_config_of(model), indent=2) + "\n")
    return directory


def adapter_config_of(model: MstaModel) -> dict:
    backbone = model.backbone
    return {
        "format": FORMAT,
        "msta_version": msta_cli.__version__,
        "backbone": _backbone_identity(model),
        "adapter": dataclasses.asdict(model.adapter_config),
        "templates": model.templates,
        "preprocessing": dataclasses.asdict(backbone.preprocessing),
    }


def read_adapter_config(directory: str | Path) -> tuple[ModelConfig, AdapterConfig, list[str]]:
    """The backbone, adapter and templates a checkpoint was trained with, to rebuild its model."""
    config = _read_config(Path(directory))
    backbone = config["backbone"]
    return (
        ModelConfig(backbone=backbone["name"], pretrained=backbone["pretrained"]),
        AdapterConfig(**config["adapter"]),
        list(config["templates"]),
    )


def model_from_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> MstaModel:
    """Rebuild the backbone and adapters a checkpoint names, then load its weights."""
    model_config, adapter_config, templates = read_adapter_config(directory)
    config = Config(model=model_config, adapter=adapter_config, text=TextConfig(templates=templates))
    model = create_model(config, device)
    load_adapter(model, directory)
    return model


def load_adapter(model: MstaModel, directory: str | Path) -> None:
    """Load adapter weights into `model`; any difference in backbone or shapes is an error."""
    directory = Path(directory)
    config = _read_config(directory)
    if config["adapter"].get("finetune") == "full":
        raise InputError(
            f"{directory}: a full fine-tuning run's checkpoint holds no backbone weights; "
            "its results are the ones its training run evaluated"
        )
    expected, found = config["backbone"], _backbone_identity(model)
    differences = [f"{key}: checkpoint {expected.get(key)!r}, model {found[key]!r}" for key in found if expected.get(key) != found[key]]
    if differences:
        same_tiny = expected.get("name") == found["name"] == TINY
        retrain = "; msta-tiny's weights have changed since, train the adapters again" if same_tiny else ""
        raise InputError(f"{directory}: adapters were trained on a different backbone ({'; '.join(differences)}){retrain}")
    try:
        weights = load_file(directory / WEIGHTS_FILE)
    except (FileNotFoundError, SafetensorError) as error:
        raise InputError(f"{directory / WEIGHTS_FILE}: cannot read adapter weights: {error}") from None
    current = model.adapters.state_dict()
    mismatched = sorted(set(weights) ^ set(current))
    mismatched += [k for k in weights if k in current and weights[k].shape != current[k].shape]
    if mismatched:
        raise InputError(
            f"{directory}: adapter weights do not fit this model's adapters ({len(mismatched)} tensors differ, "
            f"e.g. {', '.join(mismatched[:5])}); check adapter.bottleneck/blocks/temporal against {CONFIG_FILE}"
        )
    model.adapters.load_state_dict(weights, strict=True)


def _backbone_identity(model: MstaModel) -> dict:
    backbone = model.backbone
    return {
        "name": backbone.name,
        "pretrained": tiny_weights_digest() if backbone.name == TINY else _weights_identity(backbone.pretrained),
        "vision_width": backbone.vision_width,
        "text_width": backbone.text_width,
        "vision_layers": len(backbone.vision_blocks),
        "text_layers": len(backbone.text_blocks),
        "embed_dim": backbone.embed_dim,
    }


def _weights_identity(pretrained: str) -> str:
    """A tag as is; a local file by its name, since the same weights live at other paths elsewhere."""
    return Path(pretrained).name if os.path.isfile(pretrained) else pretrained


def _read_config(directory: Path) -> dict:
    path = directory / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: not found; an adapter checkpoint is a folder with {WEIGHTS_FILE} and {CONFIG_FILE}") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from None
    if config.get("format") != FORMAT:
        raise InputError(f"{path}: not an msta adapter config (format {config.get('format')!r}, expected {FORMAT!r})")
    return config
