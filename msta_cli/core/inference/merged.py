"""The merged export: one safetensors file that rebuilds the whole model with no download.

It holds every backbone weight, the adapter weights, optionally a label set's class
embeddings, and JSON metadata with the open_clip model config, preprocessing, templates, frames
per clip and their sampling and, for msta-tiny and other `msta pretrain-tiny` models, their compact vocabulary.
open_clip rebuilds the architecture from that config (through a temporary `local-dir:` folder,
open_clip's own loader for configs on disk); the weights come from the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import open_clip
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

import msta_cli
from msta_cli.core.backbone import OpenClipFramewise, open_clip_source
from msta_cli.core.checkpoint import SAMPLING_KEYS, adapter_config_from, recorded_sampling, sampling_record
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError
from msta_cli.core.files import write_bytes_atomic
from msta_cli.core.inference.classes import Classes
from msta_cli.core.model import MstaModel
from msta_cli.core.synthetic.vocabulary import VOCABULARY_FILE, CompactTokenizer

FORMAT = "msta-merged/1"
METADATA_KEY = "msta"
BACKBONE_PREFIX = "backbone."
ADAPTER_PREFIX = "adapters."
CLASSES_KEY = "class_embeddings"
METADATA_KEYS = (
    "format", "msta_version", "backbone", "model_cfg", "preprocess_cfg", "adapter", "templates", *SAMPLING_KEYS, "labels",
    "vocabulary",
)
# What the frames are normalised with; without them open_clip would fall back to its defaults
# (OpenAI's mean and std) and score every video wrongly, without a word.
PREPROCESS_KEYS = ("size", "mean", "std")


@dataclass
class MergedModel:
    """A model rebuilt from a merged file, with what the file says about its inputs."""

    model: MstaModel
    sampling: ClipSampling
    classes: Classes | None


def save_merged(model: MstaModel, path: str | Path, sampling: ClipSampling, classes: Classes | None = None) -> None:
    """Write `model` (and `classes`, if given) to `path`; the caller makes the write atomic."""
    backbone = model.backbone
    model_cfg = open_clip.get_model_config(open_clip_source(backbone.name))
    if model_cfg is None:
        raise InputError(f"backbone {backbone.name!r}: open_clip has no config for it, so it cannot be merged")
    if model_cfg.get("text_cfg", {}).get("hf_tokenizer_name"):
        raise InputError(
            f"backbone {backbone.name!r} uses a Hugging Face tokenizer, which a merged file cannot carry; "
            "export --format adapter or onnx instead"
        )
    metadata = {
        "format": FORMAT,
        "msta_version": msta_cli.__version__,
        "backbone": {"name": backbone.name, "pretrained": backbone.pretrained},
        "model_cfg": model_cfg,
        "preprocess_cfg": open_clip.get_model_preprocess_cfg(backbone.clip),
        "adapter": dataclasses.asdict(model.adapter_config) if model.adapter_config else None,
        "templates": model.templates,
        **sampling_record(sampling),
        "labels": list(classes.names) if classes else None,
        "vocabulary": backbone.tokenize.to_json() if isinstance(backbone.tokenize, CompactTokenizer) else None,
    }
    tensors = {BACKBONE_PREFIX + k: v for k, v in backbone.clip.state_dict().items()}
    tensors.update({ADAPTER_PREFIX + k: v for k, v in model.adapters.state_dict().items()})
    if classes is not None:
        tensors[CLASSES_KEY] = classes.embeddings
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    # safetensors' save_file renames its own 0600 temporary file; msta's writer keeps the umask's mode.
    write_bytes_atomic(path, save(tensors, metadata={METADATA_KEY: json.dumps(metadata)}))


def read_merged_metadata(path: str | Path) -> dict:
    """The JSON metadata of a merged file; an error naming the file if it is not one."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise InputError(f"{path}: not a readable safetensors file ({error})") from None
    try:
        content = json.loads(metadata.get(METADATA_KEY, "{}"))
    except json.JSONDecodeError:
        content = {}
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise InputError(f"{path}: not an msta merged export (make one with: msta export RUN --format merged)")
    _check_metadata(Path(path), content)
    return content


def _check_metadata(path: Path, metadata: dict) -> None:
    """Refuse damaged metadata with the file and key named, before anything is built from it."""
    unknown = sorted(set(metadata) - set(METADATA_KEYS))
    if unknown:
        raise InputError(
            f"{path}: unknown metadata key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(METADATA_KEYS)}; "
            f"the file is damaged or was written by a newer msta (this is msta {msta_cli.__version__})"
        )
    expected = {"model_cfg": dict, "preprocess_cfg": dict, "backbone": dict, "templates": list, "num_frames": int}
    names = {dict: "a mapping", list: "a list", int: "an integer"}
    for key, kind in expected.items():
        if type(metadata.get(key)) is not kind:
            raise InputError(f"{path}: metadata {key!r} is missing or not {names[kind]}; export the model again")
    _check_preprocess_cfg(path, metadata["preprocess_cfg"])
    recorded_sampling(metadata, f"{path}: metadata")
    if not all(isinstance(metadata["backbone"].get(key), str) for key in ("name", "pretrained")):
        raise InputError(f"{path}: metadata 'backbone' needs string 'name' and 'pretrained'; export the model again")
    labels = metadata.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
        raise InputError(f"{path}: metadata 'labels' must be a list of strings or null; got {labels!r}")
    if metadata.get("adapter") is not None:
        adapter_config_from(metadata["adapter"], path)


def _check_preprocess_cfg(path: Path, config: dict) -> None:
    """The size, mean and std the frames are normalised with must be there and be numbers."""
    missing = [key for key in PREPROCESS_KEYS if key not in config]
    if missing:
        raise InputError(
            f"{path}: metadata 'preprocess_cfg' lacks {', '.join(map(repr, missing))}, which the frames are "
            "normalised with; export the model again"
        )
    size = config["size"]
    sizes = size if isinstance(size, list) else [size]
    if len(sizes) not in (1, 2) or not all(type(value) is int and value > 0 for value in sizes):
        raise InputError(f"{path}: metadata 'preprocess_cfg' 'size' must be a positive integer or a pair of them; got {size!r}")
    for key in ("mean", "std"):
        values = config[key]
        if not (isinstance(values, list) and len(values) == 3 and all(type(value) in (int, float) for value in values)):
            raise InputError(f"{path}: metadata 'preprocess_cfg' {key!r} must be 3 numbers (one per channel); got {values!r}")


def load_merged(path: str | Path, device: str | torch.device = "cpu") -> MergedModel:
    """Rebuild the model stored in `path` on `device`; reads nothing but that file."""
    metadata = read_merged_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise InputError(f"{path}: cannot read its tensors ({error})") from None
    with tempfile.TemporaryDirectory(prefix="msta-merged-") as folder:
        config = {"model_cfg": metadata["model_cfg"], "preprocess_cfg": metadata["preprocess_cfg"]}
        (Path(folder) / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
        try:
            with _root_logger_silenced():
                clip = open_clip.create_model(f"local-dir:{folder}", device=device)
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"{path}: open_clip cannot build the model its metadata describes ({error!r})") from None
        if metadata.get("vocabulary"):
            (Path(folder) / VOCABULARY_FILE).write_text(metadata["vocabulary"], encoding="utf-8")
            tokenizer = CompactTokenizer.load(Path(folder) / VOCABULARY_FILE)
        else:
            tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    _load_part(path, clip, tensors, BACKBONE_PREFIX)
    clip.requires_grad_(False)
    clip.eval()
    backbone = OpenClipFramewise(clip, tokenizer, metadata["backbone"]["name"], metadata["backbone"]["pretrained"])
    adapter = adapter_config_from(metadata["adapter"], path) if metadata.get("adapter") else None
    model = MstaModel(backbone, adapter, metadata["templates"]).to(device)
    _load_part(path, model.adapters, tensors, ADAPTER_PREFIX)
    classes = None
    if metadata.get("labels") is not None:
        expected = (len(metadata["labels"]), backbone.embed_dim)
        embeddings = tensors.get(CLASSES_KEY)
        if embeddings is None or tuple(embeddings.shape) != expected:
            found = "missing" if embeddings is None else f"shaped {tuple(embeddings.shape)}"
            raise InputError(f"{path}: tensor {CLASSES_KEY!r} is {found}, expected {expected}; export the model again")
        classes = Classes(tuple(metadata["labels"]), embeddings.to(device))
    return MergedModel(model.eval(), recorded_sampling(metadata, f"{path}: metadata"), classes)


def _load_part(path: str | Path, module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    """Load the tensors under `prefix` into `module`; any missing, extra or misshapen one is named."""
    part = _part(tensors, prefix)
    expected = module.state_dict()
    problems = [f"{prefix}{name} missing" for name in expected if name not in part]
    problems += [f"{prefix}{name} unexpected" for name in part if name not in expected]
    problems += [
        f"{prefix}{name} shaped {tuple(part[name].shape)}, expected {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in part and part[name].shape != tensor.shape
    ]
    if problems:
        raise InputError(f"{path}: tensors do not fit the model its metadata describes ({len(problems)}: {'; '.join(problems[:3])})")
    module.load_state_dict(part, strict=True)


@contextlib.contextmanager
def _root_logger_silenced() -> Iterator[None]:
    """open_clip warns through the root logger (configuring it on first use) that the folder
    has no weights: expected here, since they are loaded from the merged file afterwards."""
    root = logging.getLogger()
    handler, disabled = logging.NullHandler(), root.disabled
    root.addHandler(handler)
    root.disabled = True
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.disabled = disabled


def _part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name.removeprefix(prefix): tensor for name, tensor in tensors.items() if name.startswith(prefix)}
