"""One interface for scoring clips, whatever runs the model: PyTorch or an exported encoder.

`load_predictor` turns `--model` (nothing: zero-shot; a run; a checkpoint; a merged, ONNX or
TorchScript export) and a label set into a `Predictor` whose `logits` maps normalised clips
to class scores. Class embeddings are computed once, here, and reused for every clip.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch

from msta_cli.core.backbone import Preprocessing, describe_backbone, open_clip_source
from msta_cli.core.checkpoint import load_adapter, read_adapter_config, recorded_sampling
from msta_cli.core.config import Config, ModelConfig, TextConfig
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.inference.classes import Classes, embed_classes
from msta_cli.core.inference.exported import ExportedEncoder, open_exported
from msta_cli.core.inference.labels import LabelSet
from msta_cli.core.inference.merged import load_merged, read_merged_metadata
from msta_cli.core.inference.runtime import autocast, check_precision, resolve_device
from msta_cli.core.inference.sources import Source, resolve_source, run_sampling
from msta_cli.core.model import MstaModel, create_model

DEFAULT_FRAMES = 8


class Predictor(Protocol):
    """Scores batches of clips against a fixed label set."""

    description: str
    labels: tuple[str, ...]
    sampling: ClipSampling  # the clips it takes and how they are drawn from a video
    preprocessing: Preprocessing

    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalised float (N, T, 3, S, S) clips on the CPU -> (N, classes) float32 on the CPU."""
        ...


@dataclass
class ModelOptions:
    """How to build the model: zero-shot backbone choice, device, precision, frames per clip."""

    backbone: str | None = None
    pretrained: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    num_frames: int | None = None


class TorchPredictor:
    """An `MstaModel` (adapted or zero-shot) in eager PyTorch."""

    def __init__(self, model: MstaModel, classes: Classes, sampling: ClipSampling, precision: str, description: str):
        self.model = model.eval()
        self.classes = classes
        self.labels = classes.names
        self.sampling = sampling
        self.precision = precision
        self.preprocessing = model.backbone.preprocessing
        self.description = description
        self.device = next(model.parameters()).device

    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(self.device, self.precision):
            embeddings = self.model.encode_video(frames.to(self.device, non_blocking=True))
            return self.model.logits(embeddings.float(), self.classes.embeddings).float().cpu()


class ExportedPredictor:
    """An ONNX or TorchScript export with the label set baked in at export time.

    An input batch fixed at export means clips go through in chunks of that size, the last
    one padded with zeros whose outputs are dropped; an open one (ONNX) takes them all at once.
    """

    def __init__(self, encoder: ExportedEncoder):
        metadata = encoder.metadata
        self.encoder = encoder
        self.labels = tuple(metadata["labels"] or ())  # none: exported without --labels, refused by the caller
        self.sampling = recorded_sampling(metadata, f"{encoder.path}: metadata")
        self.batch_size: int | None = metadata["batch_size"]
        settings = metadata["preprocessing"]
        self.preprocessing = Preprocessing(
            int(settings["size"]), tuple(settings["mean"]), tuple(settings["std"]), settings["interpolation"]
        )
        self.description = f"{encoder.path} ({metadata['format']})"

    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        if self.batch_size is None:
            return self.encoder.run(frames)["logits"].float()
        outputs = []
        for chunk in frames.split(self.batch_size):
            padding = chunk.new_zeros(self.batch_size - len(chunk), *chunk.shape[1:])
            outputs.append(self.encoder.run(torch.cat([chunk, padding]))["logits"][: len(chunk)])
        return torch.cat(outputs).float()


def load_predictor(model: str | None, labels: LabelSet | None, options: ModelOptions) -> Predictor:
    """Build the predictor for `--model` (None: zero-shot) scoring `labels`.

    `labels` may be None only when the model carries a label set (a merged or ONNX export made
    with --labels). An export's fixed label set, frames and batch cannot be changed here.
    """
    check_precision(options.precision)
    source = resolve_source(model) if model is not None else None
    if source is not None and source.kind in ("onnx", "torchscript"):
        return _exported_predictor(source, labels, options)
    _check_torch_options(source, labels, options)
    loaded = _load_torch(source, options, resolve_device(options.device))
    if loaded.classes is not None and (labels is None or labels.names == loaded.classes.names):
        classes = loaded.classes
    else:
        classes = embed_classes(loaded.model, labels.names, options.precision)
    sampling = clip_sampling(loaded.sampling, options.num_frames)
    return TorchPredictor(loaded.model, classes, sampling, options.precision, loaded.description)


def clip_sampling(recorded: ClipSampling | None, frames: int | None) -> ClipSampling:
    """The model's recorded sampling (none: 8-frame segments), with `--frames` as its frame count
    when given; the mode and stride stay the run's, so clips are drawn as it was evaluated."""
    sampling = recorded or ClipSampling(DEFAULT_FRAMES)
    return replace(sampling, num_frames=frames) if frames else sampling


@dataclass
class _Loaded:
    model: MstaModel
    classes: Classes | None
    sampling: ClipSampling | None
    description: str


def _check_torch_options(source: Source | None, labels: LabelSet | None, options: ModelOptions) -> None:
    """Refuse impossible combinations before a (possibly large) model is loaded."""
    if source is not None and options.backbone is not None:
        raise InputError("--backbone chooses the zero-shot model; it cannot be combined with --model")
    if source is None:
        backbone = options.backbone or ModelConfig.backbone
        _refuse_unused_pretrained(options.pretrained, backbone, f"--backbone {backbone}")
    elif source.kind == "checkpoint":
        check_checkpoint_pretrained(source, options.pretrained)
    merged = source is not None and source.kind == "merged"
    if merged and options.pretrained is not None:
        raise InputError("--pretrained cannot be combined with a merged --model: it carries its own weights")
    if labels is None and not (merged and read_merged_metadata(source.path)["labels"]):
        raise InputError("--labels is required: this model carries no label set")


def _load_torch(source: Source | None, options: ModelOptions, device: torch.device) -> _Loaded:
    if source is None:
        model_config = ModelConfig(options.backbone or ModelConfig.backbone, options.pretrained or ModelConfig.pretrained)
        try:
            model = create_model(Config(model=model_config), device, adapters=False)
        except MstaError as error:  # the backbone's messages name recipe keys; here they were flags
            message = str(error).replace("model.backbone", "--backbone").replace("model.pretrained", "--pretrained")
            raise type(error)(message) from None
        return _Loaded(model, None, None, f"zero-shot {describe_backbone(model_config.backbone, model_config.pretrained)}")
    if source.kind == "merged":
        merged = load_merged(source.path, device)
        return _Loaded(merged.model, merged.classes, merged.sampling, str(source.path))
    return _Loaded(checkpoint_model(source, options.pretrained, device), None, run_sampling(source), str(source.path))


def _refuse_unused_pretrained(pretrained: str | None, backbone: str, combined_with: str) -> None:
    """msta-tiny, `local-dir:` and `hf-hub:` backbones bring their weights, so open_clip would
    ignore `--pretrained`; refuse it rather than let the user think it was used."""
    if pretrained is not None and open_clip_source(backbone).startswith(("local-dir:", "hf-hub:")):
        raise InputError(f"--pretrained cannot be combined with {combined_with}: its weights come with it")


def check_checkpoint_pretrained(source: Source, pretrained: str | None) -> None:
    """Refuse `--pretrained` for a checkpoint whose backbone brings its weights (read from its
    adapter_config.json, before the model is built)."""
    if pretrained is not None:
        backbone = read_adapter_config(source.path)[0].backbone
        _refuse_unused_pretrained(pretrained, backbone, f"{source.path}, whose backbone is {backbone}")


def checkpoint_model(source: Source, pretrained: str | None, device: str | torch.device = "cpu") -> MstaModel:
    """The model of an adapter checkpoint; `pretrained` points at the backbone weights when the
    checkpoint names a local weights file that lives elsewhere on this machine."""
    model_config, adapter_config, templates = read_adapter_config(source.path)
    if pretrained is not None:
        model_config.pretrained = pretrained
    model = create_model(Config(model=model_config, adapter=adapter_config, text=TextConfig(templates=templates)), device)
    load_adapter(model, source.path)
    return model.eval()


def _exported_predictor(source: Source, labels: LabelSet | None, options: ModelOptions) -> ExportedPredictor:
    fixed = {"--backbone": options.backbone, "--pretrained": options.pretrained}
    given = [flag for flag, value in fixed.items() if value is not None]
    if options.precision != "fp32":
        given.append("--precision")
    if given:
        raise InputError(f"{', '.join(given)} cannot be combined with an exported --model, which fixes its backbone, weights and precision")
    predictor = ExportedPredictor(open_exported(source.path, source.kind, options.device))
    if "logits" not in predictor.encoder.metadata["outputs"]:
        raise InputError(f"{source.path}: exported without --labels, so it holds no class embeddings; export again with --labels FILE")
    if labels is not None and labels.names != predictor.labels:
        raise InputError(
            f"{source.path} scores its own {len(predictor.labels)} labels, fixed at export, not those of {labels.source}; "
            "omit --labels, or export again with these labels (or use a merged export, which embeds any label set)"
        )
    if options.num_frames not in (None, predictor.sampling.num_frames):
        raise InputError(f"{source.path} takes {predictor.sampling.num_frames} frames per clip, fixed at export; omit --frames")
    return predictor
