"""What a model argument points at: a training run, an adapter checkpoint, or an export.

`--model` of `msta predict` and the source of `msta export` accept the same things, so both
resolve them here: a run folder means its best checkpoint (else its last one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from msta_cli.core.checkpoint import CONFIG_FILE, WEIGHTS_FILE, checkpoint_sampling
from msta_cli.core.config import load_config
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError

RUN_CONFIG = "config.yaml"
RUN_CHECKPOINTS = ("checkpoints/best", "checkpoints/last")
TRAINING_STATE = "training_state.pt"  # beside a run's last checkpoint: resume state, not a model

Kind = Literal["checkpoint", "merged", "onnx", "torchscript"]
EXPORT_NAMES = {"merged": "a merged", "onnx": "an ONNX", "torchscript": "a TorchScript"}
MODEL_CHOICES = (
    f"a run folder, an adapter checkpoint folder ({WEIGHTS_FILE} + {CONFIG_FILE}), a merged .safetensors export, "
    "an .onnx export or a TorchScript .pt export"
)


@dataclass(frozen=True)
class Source:
    """A resolved model argument; `run_dir` is set when it came from (or lives in) a run."""

    kind: Kind
    path: Path
    run_dir: Path | None = None


def resolve_source(spec: str | Path) -> Source:
    """Classify `spec`, or explain what was expected."""
    path = Path(spec)
    if path.is_dir():
        return _folder_source(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    if path.name in (WEIGHTS_FILE, CONFIG_FILE):
        return _folder_source(path.parent)
    if path.name == TRAINING_STATE and (path.parent / CONFIG_FILE).is_file():
        raise InputError(
            f"{path}: a training-state file (optimizer and data position, to resume training), not a model; "
            f"give the checkpoint folder {path.parent} or its run"
        )
    kinds: dict[str, Kind] = {".safetensors": "merged", ".onnx": "onnx", ".pt": "torchscript"}
    if path.suffix.lower() in kinds:
        return Source(kinds[path.suffix.lower()], path)
    raise InputError(f"{path}: not a model msta can load; expected {MODEL_CHOICES}")


def resolve_checkpoint(spec: str | Path) -> Source:
    """Like `resolve_source`, but only runs and adapter checkpoints (what can be exported)."""
    source = resolve_source(spec)
    if source.kind != "checkpoint":
        raise InputError(f"{spec}: {EXPORT_NAMES[source.kind]} export cannot be exported again; give the run folder or checkpoint")
    return source


def run_sampling(source: Source) -> ClipSampling | None:
    """Frames per clip and how test clips are drawn, as the run trained and evaluated (its
    `config.yaml`); outside a run, what an adapter export recorded; None for older checkpoints,
    which recorded none."""
    if source.run_dir is None:
        return checkpoint_sampling(source.path)
    data = load_config(source.run_dir / RUN_CONFIG).data
    return ClipSampling(data.num_frames, data.sampling, data.dense_stride)


def _folder_source(folder: Path) -> Source:
    if (folder / CONFIG_FILE).is_file():
        run = folder.parents[1] if len(folder.parents) > 1 and (folder.parents[1] / RUN_CONFIG).is_file() else None
        return Source("checkpoint", folder, run)
    if (folder / "checkpoints").is_dir():
        for candidate in RUN_CHECKPOINTS:
            if (folder / candidate / CONFIG_FILE).is_file():
                run = folder if (folder / RUN_CONFIG).is_file() else None
                return Source("checkpoint", folder / candidate, run)
        raise InputError(f"{folder}: run has no checkpoint yet ({' or '.join(RUN_CHECKPOINTS)} with {CONFIG_FILE})")
    runs = sorted(child for child in folder.iterdir() if any((child / c / CONFIG_FILE).is_file() for c in RUN_CHECKPOINTS))
    if runs:
        raise InputError(
            f"{folder}: neither a training run nor an adapter checkpoint, but a folder of runs (a protocol's); "
            f"pick one: {', '.join(map(str, runs))}"
        )
    raise InputError(
        f"{folder}: neither a training run (config.yaml + checkpoints/) nor an adapter checkpoint "
        f"({WEIGHTS_FILE} + {CONFIG_FILE})"
    )
