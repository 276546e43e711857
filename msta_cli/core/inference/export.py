"""`msta export`: adapter, merged, ONNX and TorchScript files, each verified before it is kept.

Verification runs the written file and the PyTorch model on the same random clip and compares
every output they share: the video embedding, the class embeddings (formats with a text
tower) and the logits. A file is written under a temporary name and renamed only when every
difference is within tolerance, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from msta_cli.core.checkpoint import CONFIG_FILE, WEIGHTS_FILE, save_adapter
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.files import atomic_path
from msta_cli.core.inference.classes import Classes, embed_classes
from msta_cli.core.inference.exported import (
    INPUT,
    METADATA_KEY,
    TORCHSCRIPT_METADATA,
    encoder_metadata,
    open_exported,
    output_names,
)
from msta_cli.core.inference.merged import load_merged, save_merged
from msta_cli.core.inference.labels import LabelSet
from msta_cli.core.inference.predictor import check_checkpoint_pretrained, checkpoint_model, clip_sampling
from msta_cli.core.inference.runtime import require
from msta_cli.core.inference.sources import Source, resolve_checkpoint, run_sampling
from msta_cli.core.model import MstaModel

SUFFIXES = {"adapter": "", "merged": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}
FORMATS = tuple(SUFFIXES)
DEFAULT_TOLERANCE = 1e-4
# Class names used to check the text tower when the export carries no label set.
PROBE_CLASSES = ("walking the dog", "playing guitar")

Outputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Check:
    """Largest absolute difference of one output between the export and PyTorch."""

    output: str
    difference: float
    tolerance: float


@dataclass
class ExportReport:
    format: str
    paths: list[Path]
    checks: list[Check]


def export_checkpoint(
    spec: str | Path,
    format: str,
    out: str | Path,
    labels: LabelSet | None = None,
    num_frames: int | None = None,
    batch_size: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    pretrained: str | None = None,
) -> ExportReport:
    """Export the run or checkpoint `spec`; frames default to the run's, else 8, and the export
    records the run's sampling (segment, or dense with its stride) for `msta predict`."""
    if format in ("adapter", "merged") and batch_size is not None:
        raise InputError(f"--batch-size fixes the input of onnx and torchscript exports; a {format} export takes any batch")
    if format == "adapter" and labels is not None:
        raise InputError("--labels is for merged, onnx and torchscript exports; an adapter export holds adapter weights only")
    _check_out(format, Path(out))
    source = resolve_checkpoint(spec)
    check_checkpoint_pretrained(source, pretrained)
    model = checkpoint_model(source, pretrained)
    classes = embed_classes(model, labels.names) if labels else None
    sampling = clip_sampling(run_sampling(source), num_frames)
    return export_model(model, format, out, sampling, classes, batch_size, tolerance)


def export_model(
    model: MstaModel,
    format: str,
    out: str | Path,
    sampling: ClipSampling,
    classes: Classes | None = None,
    batch_size: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportReport:
    """Write `model` as `format` to `out` (a folder for `adapter`, else a file) and verify it.

    Every format records `sampling`, so a video is sampled as the model was evaluated.
    ONNX and TorchScript files take clips of exactly `sampling.num_frames` frames, and exactly
    `batch_size` of them per call; an ONNX file exported with `batch_size=None` takes any
    number; a TorchScript file always has a fixed batch (1 by default), since torch.jit.trace
    records every size as a constant.
    """
    out = Path(out)
    _check_out(format, out)
    if format == "torchscript":
        batch_size = batch_size or 1
    with _folders_removed_on_failure(out.parent):
        return _export_verified(model, format, out, sampling, classes, batch_size, tolerance)


@contextlib.contextmanager
def _folders_removed_on_failure(folder: Path) -> Iterator[None]:
    """Create `folder` and its missing parents; a failed export removes those it created, so it
    leaves nothing behind (an exported file needs its folder to be written and renamed in)."""
    created = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in created:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def _export_verified(
    model: MstaModel, format: str, out: Path, sampling: ClipSampling, classes: Classes | None, batch_size: int | None,
    tolerance: float,
) -> ExportReport:
    generator = torch.Generator().manual_seed(0)
    size = model.backbone.preprocessing.size
    # A batch left open is traced on 2 clips (torch.export specialises sizes 0 and 1) and
    # verified on 3, so the file is shown to take a batch it was not traced with.
    clip = torch.randn(batch_size or 3, sampling.num_frames, 3, size, size, generator=generator)
    reference = _torch_outputs(model.eval(), clip, classes)
    verify = _Verifier(reference, float(model.backbone.logit_scale()), tolerance)
    if format == "adapter":
        return ExportReport(format, _export_adapter(model, out, sampling, clip, classes, verify), verify.checks)
    with atomic_path(out) as temporary:
        if format == "merged":
            save_merged(model, temporary, sampling, classes)
            verify(_torch_outputs(load_merged(temporary).model, clip, classes))
        else:
            _export_encoder(format, model, Path(temporary), sampling, clip if batch_size else clip[:2], classes, batch_size)
            verify(open_exported(temporary, format, "cpu").run(clip))
    return ExportReport(format, [out], verify.checks)


class _Verifier:
    """Compares an export's outputs with PyTorch's; raises before anything is kept."""

    def __init__(self, reference: Outputs, logit_scale: float, tolerance: float):
        self.reference = reference
        self.logit_scale = logit_scale
        self.tolerance = tolerance
        self.checks: list[Check] = []

    def __call__(self, exported: Outputs) -> None:
        for name in self.reference.keys() & exported.keys():
            difference = float((exported[name].float() - self.reference[name].float()).abs().max())
            # Logits are cosines times the logit scale (100 for CLIP), so they get its share.
            tolerance = self.tolerance * (self.logit_scale if name == "logits" else 1.0)
            self.checks.append(Check(name, difference, tolerance))
        failed = [check for check in self.checks if check.difference > check.tolerance]
        if failed:
            details = "; ".join(f"{c.output} differs by {c.difference:.3g} (tolerance {c.tolerance:.3g})" for c in failed)
            raise MstaError(f"verification failed, nothing was written: the export does not reproduce PyTorch: {details}")


def _torch_outputs(model: MstaModel, clip: torch.Tensor, classes: Classes | None) -> Outputs:
    """The outputs an export must reproduce; class embeddings come from the model's text tower."""
    names = classes.names if classes else PROBE_CLASSES
    with torch.inference_mode():
        embedding = model.encode_video(clip)
        outputs = {"embedding": embedding, "class_embeddings": model.class_embeddings(list(names))}
        if classes is not None:
            outputs["logits"] = model.logits(embedding, outputs["class_embeddings"])
    return outputs


def _export_adapter(
    model: MstaModel, out: Path, sampling: ClipSampling, clip: torch.Tensor, classes: Classes | None,
    verify: Callable[[Outputs], None],
) -> list[Path]:
    """Save into a staging folder beside `out`, reload it onto the same backbone, then move it."""
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as staging:
        save_adapter(model, staging, sampling)
        restored = checkpoint_model(Source("checkpoint", Path(staging)), model.backbone.pretrained)
        verify(_torch_outputs(restored, clip, classes))
        out.mkdir(exist_ok=True)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            os.replace(Path(staging) / name, out / name)
    return [out / WEIGHTS_FILE, out / CONFIG_FILE]


class _Encoder(nn.Module):
    """What an exported file computes: frames -> embedding, and logits for the baked classes."""

    def __init__(self, model: MstaModel, classes: Classes | None):
        super().__init__()
        self.model = model
        self.register_buffer("classes", None if classes is None else classes.embeddings.detach().clone())

    def forward(self, frames: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        embedding = self.model.encode_video(frames)
        if self.classes is None:
            return embedding
        return embedding, self.model.logits(embedding, self.classes)


def _export_encoder(
    format: str, model: MstaModel, path: Path, sampling: ClipSampling, clip: torch.Tensor, classes: Classes | None,
    batch_size: int | None,
) -> None:
    """Trace the encoder: through torch.export for ONNX, with torch.jit.trace for TorchScript.

    The frame count and frame size are fixed; the batch is symbolic when `batch_size` is None
    (ONNX only: a trace records every size as a constant).
    """
    metadata = encoder_metadata(format, model, sampling, batch_size, classes)
    encoder = _Encoder(model, classes).eval()
    if format == "onnx":
        require("onnxscript", "onnx", "ONNX export")
    with warnings.catch_warnings(), torch.no_grad():
        # torch.jit is deprecated in favour of torch.export and says so on every call; the
        # exported graph's shape asserts trip TracerWarning. Neither concerns the user.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        if format == "onnx":
            dynamic_shapes = None if batch_size else ({0: torch.export.Dim("batch", min=1)},)
            program = torch.export.export(encoder, (clip,), dynamic_shapes=dynamic_shapes)
            onnx_program = torch.onnx.export(
                program, (clip,), input_names=[INPUT], output_names=output_names(classes), verbose=False
            )
            onnx_program.model.metadata_props[METADATA_KEY] = json.dumps(metadata)
            onnx_program.save(str(path))
        else:
            # The eager module, not torch.export's graph: that graph turns the attention's
            # `.contiguous().view()` into a bare view, which failed on CUDA (an H200), whose
            # attention kernels return other strides than the CPU it was traced on.
            traced = torch.jit.trace(encoder, (clip,), check_trace=False)
            torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_METADATA: json.dumps(metadata)})


def _check_out(format: str, out: Path) -> None:
    if format not in SUFFIXES:
        raise InputError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    if format == "adapter":
        if out.is_file():
            raise InputError(f"--out {out}: is a file; the adapter export is a folder ({WEIGHTS_FILE} + {CONFIG_FILE})")
        return
    if out.suffix.lower() != SUFFIXES[format]:
        raise InputError(f"--out {out}: a {format} export must end in {SUFFIXES[format]} (msta predict recognises exports by suffix)")
    if out.is_dir():
        raise InputError(f"--out {out}: is a folder; give a file path ending in {SUFFIXES[format]}")

