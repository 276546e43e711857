"""Exported video encoders (ONNX, TorchScript): the metadata they carry and running them.

An exported encoder maps a batch of normalised frames (fixed frame count and size; a fixed or,
for ONNX, any batch size) to the video embedding and, when exported with a label set, to the
class logits too, so a consumer needs nothing but the runtime. The JSON metadata says how to
feed it (frames, size, mean, std, batch: null for any), how to draw clips from a video (the
run's `sampling`, and `dense_stride` for dense sampling) and which labels the logits are for;
`msta predict` reads it back through `open_exported`.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

import msta_cli
from msta_cli.core.checkpoint import sampling_record
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.inference.classes import Classes
from msta_cli.core.inference.runtime import require, resolve_device
from msta_cli.core.inference.sources import MODEL_CHOICES
from msta_cli.core.model import MstaModel

FORMATS = {"onnx": "msta-onnx/1", "torchscript": "msta-torchscript/1"}
METADATA_KEY = "msta"
TORCHSCRIPT_METADATA = "msta.json"
INPUT = "frames"


def output_names(classes: Classes | None) -> list[str]:
    return ["embedding"] if classes is None else ["embedding", "logits"]


def encoder_metadata(
    kind: str, model: MstaModel, sampling: ClipSampling, batch_size: int | None, classes: Classes | None
) -> dict:
    """Everything needed to feed the exported encoder (and draw its clips from a video as the
    run did) and to read its outputs; batch None: any."""
    preprocessing = model.backbone.preprocessing
    shape = [batch_size or "batch", sampling.num_frames, 3, preprocessing.size, preprocessing.size]
    return {
        "format": FORMATS[kind],
        "msta_version": msta_cli.__version__,
        "backbone": {"name": model.backbone.name, "pretrained": model.backbone.pretrained},
        "adapter": dataclasses.asdict(model.adapter_config) if model.adapter_config else None,
        "input": {"name": INPUT, "shape": shape},
        **sampling_record(sampling),
        "batch_size": batch_size,
        "preprocessing": dataclasses.asdict(preprocessing),
        "outputs": output_names(classes),
        "labels": list(classes.names) if classes else None,
        "logit_scale": float(model.backbone.logit_scale()),
    }


@dataclass
class ExportedEncoder:
    """A loaded export: its metadata and a function from a full input batch to named outputs."""

    path: Path
    metadata: dict
    run: Callable[[torch.Tensor], dict[str, torch.Tensor]]


def open_exported(path: str | Path, kind: str, device: str = "auto") -> ExportedEncoder:
    """Open an `.onnx` (onnxruntime) or TorchScript `.pt` export made by `msta export`."""
    path = Path(path)
    opener = _open_onnx if kind == "onnx" else _open_torchscript
    return opener(path, device)


def _open_onnx(path: Path, device: str) -> ExportedEncoder:
    ort = require("onnxruntime", "onnx", "running an ONNX export")
    providers = _providers(ort, device)  # outside the try: a device mistake is not the file's fault
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as error:  # onnxruntime raises its own unexported exception types
        raise InputError(f"{path}: onnxruntime cannot load it: {str(error).splitlines()[0]}") from None
    metadata = _checked(path, "onnx", session.get_modelmeta().custom_metadata_map.get(METADATA_KEY))
    names = metadata["outputs"]

    def run(frames: torch.Tensor) -> dict[str, torch.Tensor]:
        values = session.run(names, {INPUT: frames.numpy()})
        return {name: torch.from_numpy(value) for name, value in zip(names, values)}

    return ExportedEncoder(path, metadata, run)


def _open_torchscript(path: Path, device: str) -> ExportedEncoder:
    extra = {TORCHSCRIPT_METADATA: ""}
    target = resolve_device(device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice, not for users
            module = torch.jit.load(str(path), map_location=target, _extra_files=extra)
    except RuntimeError as error:
        if _is_torch_save(path):
            raise InputError(
                f"{path}: a PyTorch pickle (torch.save), not a TorchScript export made by msta export --format torchscript; "
                f"--model takes {MODEL_CHOICES}"
            ) from None
        raise InputError(f"{path}: not a TorchScript file torch can load: {str(error).splitlines()[0]}") from None
    metadata = _checked(path, "torchscript", extra[TORCHSCRIPT_METADATA] or None)
    names = metadata["outputs"]

    def run(frames: torch.Tensor) -> dict[str, torch.Tensor]:
        try:
            with torch.inference_mode():
                values = module(frames.to(target))
        except (RuntimeError, torch.jit.Error) as error:  # the interpreter wraps errors in jit.Error
            raise MstaError(
                f"{path}: the TorchScript module failed on {target}: {str(error).strip().splitlines()[-1]}; "
                "try --device cpu, or export again with this msta"
            ) from None
        values = values if isinstance(values, tuple) else (values,)
        return {name: value.cpu() for name, value in zip(names, values)}

    return ExportedEncoder(path, metadata, run)


def _is_torch_save(path: Path) -> bool:
    """Whether `path` is what torch.save writes (a zip holding data.pkl but none of TorchScript's
    constants.pkl, or the bare pickle of torch before 1.6): most people's "model .pt", which is
    intact though torch.jit calls it likely corrupted."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = {name.partition("/")[2] for name in archive.namelist()}
            return "data.pkl" in names and "constants.pkl" not in names
        with open(path, "rb") as handle:
            return handle.read(2) == b"\x80\x02"  # pickle protocol 2, torch.save's default before 1.6
    except (OSError, zipfile.BadZipFile):
        return False


def _checked(path: Path, kind: str, text: str | bytes | None) -> dict:
    try:
        metadata = json.loads(text) if text else {}
    except json.JSONDecodeError:
        metadata = {}
    if metadata.get("format") != FORMATS[kind]:
        raise InputError(f"{path}: not made by msta export --format {kind} (no msta metadata)")
    return metadata


def _providers(ort, device: str) -> list:
    available = ort.get_available_providers()
    if device == "auto":
        device = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if device == "cpu":
        return ["CPUExecutionProvider"]
    # The device is quoted: rich, which prints errors, would turn an unquoted "cuda:x: ..." into an emoji.
    kind, _, index = device.partition(":")
    if kind != "cuda" or not (index == "" or index.isdigit()):
        raise InputError(f"--device {device!r} is not a device; use auto, cpu, cuda or cuda:N")
    if "CUDAExecutionProvider" not in available:
        raise InputError(
            f"--device {device!r}: this onnxruntime offers only {', '.join(available)}; "
            "use --device cpu, or install onnxruntime-gpu for CUDA"
        )
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
