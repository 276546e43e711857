"""Adapter checkpoints: `adapter.safetensors` + `adapter_config.json`, the PEFT-style pair.

Only adapter weights are stored (a few MB); the config names the backbone they were trained on
so that loading them anywhere else is an error instead of a silent mismatch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

import msta_cli
from msta_cli.core.backbone import (
    TINY,
    absolute_backbone_name,
    local_dir_folder,
    local_dir_weights_digest,
    tiny_weights_digest,
)
from msta_cli.core.config import AdapterConfig, Config, ModelConfig, TextConfig
from msta_cli.core.data.sampling import SAMPLINGS, ClipSampling
from msta_cli.core.errors import InputError
from msta_cli.core.files import write_bytes_atomic, write_text_atomic
from msta_cli.core.model import MstaModel, create_model

WEIGHTS_FILE = "adapter.safetensors"
CONFIG_FILE = "adapter_config.json"
FORMAT = "msta-adapter/1"
SAMPLING_KEYS = ("num_frames", "sampling", "dense_stride")
CONFIG_KEYS = ("format", "msta_version", "backbone", "adapter", "templates", "preprocessing", *SAMPLING_KEYS, "selection", "epoch")
SELECTIONS = ("last", "best-on-val", "best-on-test")


def save_adapter(
    model: MstaModel, directory: str | Path, sampling: ClipSampling | None = None, selection: str | None = None,
    epoch: int | None = None,
) -> Path:
    """Write the pair atomically (temp file, then rename), so a crash never leaves half a file.

    `sampling` (frames per clip and how test clips are drawn, as the adapters were trained or
    exported with) is recorded for a checkpoint that leaves its run, such as an adapter export,
    which has no config.yaml beside it.
    A training checkpoint records how it was chosen (`selection`, and the `epoch` of a best one),
    so its results are labelled by what it is, whatever the recipe evaluating it says.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in model.adapters.state_dict().items()}
    # safetensors' save_file renames its own 0600 temporary file; msta's writer keeps the umask's mode.
    write_bytes_atomic(directory / WEIGHTS_FILE, save(weights, metadata={"format": FORMAT}))
    config = adapter_config_of(model, sampling)
    config.update({key: value for key, value in (("selection", selection), ("epoch", epoch)) if value is not None})
    write_text_atomic(directory / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return directory


def adapter_config_of(model: MstaModel, sampling: ClipSampling | None = None) -> dict:
    backbone = model.backbone
    config = {
        "format": FORMAT,
        "msta_version": msta_cli.__version__,
        "backbone": _backbone_identity(model),
        "adapter": dataclasses.asdict(model.adapter_config),
        "templates": model.templates,
        "preprocessing": dataclasses.asdict(backbone.preprocessing),
    }
    if sampling is not None:
        config.update(sampling_record(sampling))
    return config


def sampling_record(sampling: ClipSampling) -> dict:
    """The keys a checkpoint or export records for its test clips; the stride only for dense
    sampling, the one that uses it."""
    record: dict = {"num_frames": sampling.num_frames, "sampling": sampling.mode}
    if sampling.mode == "dense":
        record["dense_stride"] = sampling.dense_stride
    return record


def recorded_sampling(record: dict, where: str) -> ClipSampling:
    """What `sampling_record` wrote, checked so that a damaged file is named (`where` starts each
    message); files from before msta recorded the sampling mean TSN segment sampling."""
    frames = record.get("num_frames")
    if type(frames) is not int or frames < 1:
        raise InputError(f"{where} 'num_frames' must be a positive integer; got {frames!r}")
    mode = record.get("sampling", "segment")
    if mode not in SAMPLINGS:
        raise InputError(f"{where} 'sampling' must be one of {', '.join(SAMPLINGS)}; got {mode!r}")
    stride = record.get("dense_stride")
    if (mode == "dense" or stride is not None) and (type(stride) is not int or stride < 1):
        raise InputError(f"{where} 'dense_stride' must be a positive integer (frames between a dense clip's frames); got {stride!r}")
    return ClipSampling(frames, mode, stride) if mode == "dense" else ClipSampling(frames)


def read_adapter_config(directory: str | Path) -> tuple[ModelConfig, AdapterConfig, list[str]]:
    """The backbone, adapter and templates a checkpoint was trained with, to rebuild its model."""
    path = Path(directory) / CONFIG_FILE
    config = _read_config(Path(directory))
    backbone = config["backbone"]
    folder = local_dir_folder(backbone["name"])
    if folder is not None and not folder.is_dir():
        raise InputError(
            f"{path}: backbone folder {folder} not found; this path was recorded by the run that trained "
            f"the adapters. Put the backbone folder back there, or set \"backbone\".\"name\" in {path} to "
            "local-dir:NEW_FOLDER (its weights are checked against the recorded sha256)"
        )
    return (
        ModelConfig(backbone=backbone["name"], pretrained=backbone["pretrained"]),
        adapter_config_from(config["adapter"], path),
        list(config["templates"]),
    )


def checkpoint_selection(directory: str | Path) -> str | None:
    """How a training checkpoint was chosen (last, best-on-val, best-on-test); None for exports
    and checkpoints written before msta recorded it."""
    return _read_config(Path(directory)).get("selection")


def checkpoint_sampling(directory: str | Path) -> ClipSampling | None:
    """The test-clip sampling recorded in the checkpoint (training checkpoints and adapter
    exports), or None (those of msta versions that did not record it)."""
    config = _read_config(Path(directory))
    return recorded_sampling(config, f"{Path(directory) / CONFIG_FILE}:") if "num_frames" in config else None


def adapter_config_from(data: Any, path: Path) -> AdapterConfig:
    """An `AdapterConfig` from stored JSON, checked first, so a damaged file is named, not a traceback.

    Keys missing are defaults (files written before they existed); unknown ones are refused.
    """
    if not isinstance(data, dict):
        raise InputError(f"{path}: 'adapter' must be a mapping; got {data!r}")
    hints = typing.get_type_hints(AdapterConfig)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise InputError(f"{path}: unknown adapter key(s) {', '.join(map(repr, unknown))}{_newer_msta()}")
    for key, value in data.items():
        if not _matches(hints[key], value):
            raise InputError(f"{path}: 'adapter.{key}' must be {_describe(hints[key])}; got {value!r}")
    return AdapterConfig(**data)


def _matches(hint: Any, value: Any) -> bool:
    """Whether a JSON value fits an `AdapterConfig` field's type (bool is no number here)."""
    if typing.get_origin(hint) is typing.Literal:
        return value in typing.get_args(hint)
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(_matches(typing.get_args(hint)[0], item) for item in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return type(value) is hint


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if typing.get_origin(hint) is list:
        return "a list of integers"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[hint]


def _newer_msta() -> str:
    return f"; written by a newer msta? This is msta {msta_cli.__version__}"


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
    _refuse_full_finetuning(directory, config)
    expected, found = dict(config["backbone"]), _backbone_identity(model)
    expected["name"] = absolute_backbone_name(expected["name"])  # older checkpoints kept a relative path
    local_dir = local_dir_folder(found["name"])
    if local_dir is not None and not str(expected["pretrained"]).startswith("sha256:"):
        expected["pretrained"] = found["pretrained"]  # recorded before msta hashed local-dir weights
    differences = [f"{key}: checkpoint {expected.get(key)!r}, model {found[key]!r}" for key in found if expected.get(key) != found[key]]
    if differences:
        raise InputError(
            f"{directory}: adapters were trained on a different backbone ({'; '.join(differences)})"
            f"{_changed_weights(expected, found, local_dir)}"
        )
    try:
        weights = load_file(directory / WEIGHTS_FILE)
    except (FileNotFoundError, SafetensorError) as error:
        raise _unreadable_weights(directory, error) from None
    current = model.adapters.state_dict()
    mismatched = sorted(set(weights) ^ set(current))
    mismatched += [k for k in weights if k in current and weights[k].shape != current[k].shape]
    if mismatched:
        raise InputError(
            f"{directory}: adapter weights do not fit this model's adapters ({len(mismatched)} tensors differ, "
            f"e.g. {', '.join(mismatched[:5])}); check adapter.bottleneck/blocks/temporal against {CONFIG_FILE}"
        )
    model.adapters.load_state_dict(weights, strict=True)


def check_adapter_weights(directory: str | Path) -> None:
    """Refuse a checkpoint whose weights cannot be loaded before anything is scored: opening the
    file reads its header, which safetensors checks against the file's length (a truncated or
    random file fails here), so an evaluation stops before its zero-shot row has run."""
    directory = Path(directory)
    _refuse_full_finetuning(directory, _read_config(directory))
    try:
        with safe_open(directory / WEIGHTS_FILE, framework="pt"):
            pass
    except (FileNotFoundError, SafetensorError) as error:
        raise _unreadable_weights(directory, error) from None


def _refuse_full_finetuning(directory: Path, config: dict) -> None:
    if config["adapter"].get("finetune") == "full":
        raise InputError(
            f"{directory}: a full fine-tuning run's checkpoint holds no backbone weights; "
            "its results are the ones its training run evaluated"
        )


def _unreadable_weights(directory: Path, error: Exception) -> InputError:
    return InputError(f"{directory / WEIGHTS_FILE}: cannot read adapter weights: {error}")


def _changed_weights(expected: dict, found: dict, local_dir: Path | None) -> str:
    """The likely cause when only the weights differ under the same backbone name."""
    if expected["name"] != found["name"] or expected.get("pretrained") == found["pretrained"]:
        return ""
    if found["name"] == TINY:
        return "; msta-tiny's weights have changed since, train the adapters again"
    if local_dir is not None:
        return f"; the weights in {local_dir} are not the ones the adapters were trained on: restore them, or train again"
    return ""


def _backbone_identity(model: MstaModel) -> dict:
    backbone = model.backbone
    local_dir = local_dir_folder(backbone.name)
    if backbone.name == TINY:
        pretrained = tiny_weights_digest()
    elif local_dir is not None:
        pretrained = local_dir_weights_digest(local_dir)
    else:
        pretrained = weights_identity(backbone.pretrained)
    return {
        "name": absolute_backbone_name(backbone.name),
        "pretrained": pretrained,
        "vision_width": backbone.vision_width,
        "text_width": backbone.text_width,
        "vision_layers": len(backbone.vision_blocks),
        "text_layers": len(backbone.text_blocks),
        "embed_dim": backbone.embed_dim,
    }


def weights_identity(pretrained: str) -> str:
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
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise InputError(f"{path}: not an msta adapter config (format {found!r}, expected {FORMAT!r})")
    _check_config(path, config)
    return config


def _check_config(path: Path, config: dict) -> None:
    """Refuse a damaged or foreign config before any of it is used (adapter keys: `adapter_config_from`)."""
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise InputError(
            f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(CONFIG_KEYS)}{_newer_msta()}"
        )
    missing = [key for key in ("backbone", "adapter", "templates") if key not in config]
    if missing:
        raise InputError(f"{path}: missing {', '.join(map(repr, missing))}; the file is damaged, save or export the checkpoint again")
    backbone = config["backbone"]
    if not isinstance(backbone, dict) or not all(isinstance(backbone.get(key), str) for key in ("name", "pretrained")):
        raise InputError(f"{path}: 'backbone' must be a mapping with string 'name' and 'pretrained'; got {backbone!r}")
    templates = config["templates"]
    if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
        raise InputError(f"{path}: 'templates' must be a non-empty list of strings; got {templates!r}")
    adapter_config_from(config["adapter"], path)
    if any(key in config for key in SAMPLING_KEYS):
        recorded_sampling(config, f"{path}:")
    if config.get("selection", "last") not in SELECTIONS:
        raise InputError(f"{path}: 'selection' must be one of {', '.join(SELECTIONS)}; got {config['selection']!r}")
    epoch = config.get("epoch")
    if epoch is not None and (type(epoch) is not int or epoch < 0):
        raise InputError(f"{path}: 'epoch' must be a non-negative integer; got {epoch!r}")
