"""Frozen video-language backbones behind one small interface the adapter and loss rely on.

A backbone exposes its transformer blocks (where adapters attach), a token layout (how a vision
block's tokens map onto frames, for the temporal path), video and text encoders, a tokenizer,
its frozen logit scale and its own preprocessing. Frame-wise image CLIP from open_clip is the
implementation here; a joint space-time backbone (ViCLIP) plugs in by providing the same members
with its own layout, without touching the adapter or the loss.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import open_clip
import torch
from torch import nn

from msta_cli.core.config import ModelConfig
from msta_cli.core.errors import InputError, MstaError, did_you_mean
from msta_cli.core.synthetic.vocabulary import VOCABULARY_FILE, CompactTokenizer

NO_WEIGHTS = ("none", "")
# The small CLIP of the synthetic world, shipped in the package (an open_clip local-dir folder
# plus its compact vocabulary); `model.pretrained` is ignored for it, as for any local-dir.
TINY = "msta-tiny"
TINY_DIR = Path(__file__).resolve().parents[1] / "assets" / TINY


# The weights files open_clip looks for in a `local-dir:` folder, in its order of preference.
LOCAL_DIR_WEIGHTS = (
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth",
)


def tiny_weights_digest() -> str:
    """msta-tiny's weights by content: a new msta version can ship other weights under the same name."""
    return local_dir_weights_digest(TINY_DIR)


def local_dir_weights_digest(folder: str | Path) -> str:
    """A `local-dir:` folder's weights by content ("none" without any): other weights can be put
    in the same folder, and adapters trained on the old ones must not load onto them silently."""
    folder = Path(folder)
    weights = next((folder / name for name in LOCAL_DIR_WEIGHTS if (folder / name).is_file()), None)
    if weights is None:
        candidates = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) + sorted(folder.glob("*.pth"))
        weights = candidates[0] if candidates else None
    if weights is None:
        return "none"
    stat = weights.stat()
    return _file_digest(weights.resolve(), (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))


@functools.cache
def _file_digest(path: Path, version: tuple[int, ...]) -> str:
    """Cached per file version (inode, size, times), so a large backbone is hashed once per process."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}"


def local_dir_folder(name: str) -> Path | None:
    """The folder of a `local-dir:` backbone name, else None."""
    return Path(name.removeprefix("local-dir:")) if name.startswith("local-dir:") else None


def absolute_backbone_name(name: str) -> str:
    """`local-dir:` names with an absolute path, so a checkpoint finds its backbone from any folder."""
    folder = local_dir_folder(name)
    return name if folder is None else f"local-dir:{folder.resolve()}"


@dataclass(frozen=True)
class Preprocessing:
    """The backbone's own input contract; videos are normalised with these, never ImageNet's."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str


class TokenLayout(Protocol):
    """Maps a vision block's tokens onto (clip, frame) so a convolution can run over frames."""

    def over_frames(self, tokens: torch.Tensor, conv: nn.Module) -> torch.Tensor:
        """Apply `conv` (adapter.TemporalConv: over the frames of (clips, frames, tokens, channels))
        to every token position present in every frame."""
        ...


class FramewiseLayout:
    """Image CLIP applied per frame: a block sees (clips * frames, tokens, channels).

    `num_frames` is set by the backbone's `encode_video` for the duration of one forward pass,
    because the image tower itself has no notion of clips.
    """

    def __init__(self) -> None:
        self.num_frames = 1

    def over_frames(self, tokens: torch.Tensor, conv: nn.Module) -> torch.Tensor:
        frames_times_clips, num_tokens, channels = tokens.shape
        if frames_times_clips % self.num_frames:  # not divmod: torch.export's symbolic batch has no divmod
            raise ValueError(f"{frames_times_clips} frame images do not split into clips of {self.num_frames} frames")
        mixed = conv(tokens.reshape(frames_times_clips // self.num_frames, self.num_frames, num_tokens, channels))
        return mixed.reshape(frames_times_clips, num_tokens, mixed.shape[-1])


class Backbone(nn.Module):
    """What MSTA needs from a frozen video-language model."""

    name: str
    pretrained: str
    vision_blocks: list[nn.Module]
    text_blocks: list[nn.Module]
    vision_width: int
    text_width: int
    embed_dim: int
    token_layout: TokenLayout
    preprocessing: Preprocessing
    tokenize: Callable[[list[str]], torch.Tensor]

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """(clips, frames, 3, H, W) float -> (clips, embed_dim), not normalised."""
        raise NotImplementedError

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(texts, context) token ids -> (texts, embed_dim), not normalised."""
        raise NotImplementedError

    def logit_scale(self) -> torch.Tensor:
        raise NotImplementedError

    def set_grad_checkpointing(self) -> None:
        raise NotImplementedError


class OpenClipFramewise(Backbone):
    """An open_clip image CLIP encoding a video frame by frame; the video embedding is the mean."""

    def __init__(self, clip: nn.Module, tokenizer: Callable, name: str, pretrained: str):
        super().__init__()
        self.clip = clip
        self.name = name
        self.pretrained = pretrained
        self.tokenize = tokenizer
        visual_transformer = getattr(clip.visual, "transformer", None)
        if visual_transformer is None:
            raise InputError(f"model.backbone '{name}': MSTA needs a ViT image tower; this one has no transformer blocks")
        text_transformer = _text_transformer(clip, name)
        self.vision_blocks = list(visual_transformer.resblocks)
        self.text_blocks = list(text_transformer.resblocks)
        self.vision_width = visual_transformer.width
        self.text_width = text_transformer.width
        self.embed_dim = clip.visual.output_dim
        self.token_layout = FramewiseLayout()
        self.preprocessing = _preprocessing_of(clip)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        clips, num_frames = frames.shape[:2]
        self.token_layout.num_frames = num_frames
        frame_embeddings = self.clip.encode_image(frames.flatten(0, 1))
        return frame_embeddings.reshape(clips, num_frames, -1).mean(dim=1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(tokens)

    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp()

    def set_grad_checkpointing(self) -> None:
        """Recompute block activations in backward: less memory for a little more compute."""
        self.clip.set_grad_checkpointing(True)


def open_clip_source(name: str) -> str:
    """The name open_clip knows `model.backbone` by: msta-tiny is a folder in the package."""
    return f"local-dir:{TINY_DIR}" if name == TINY else name


def describe_backbone(name: str, pretrained: str) -> str:
    """A backbone as users read it: with its pretrained tag only where the tag is used (not for
    local-dir:, hf-hub: or msta-tiny, whose weights come with them)."""
    return name if open_clip_source(name).startswith(("local-dir:", "hf-hub:")) else f"{name} ({pretrained})"


_OPEN_CLIP_DIR = os.path.dirname(open_clip.__file__)


class _OpenClipErrorFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and record.pathname.startswith(_OPEN_CLIP_DIR))


@contextlib.contextmanager
def _open_clip_error_logs_dropped() -> Iterator[None]:
    """open_clip logs each error (a failed weight download, an unknown tag) on the root logger
    just before raising it; msta reports the raised error itself, so the log line would print
    the same text once more, as "ERROR:root:...", above msta's message."""
    drop = _OpenClipErrorFilter()
    logging.getLogger().addFilter(drop)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(drop)


def load_backbone(config: ModelConfig, device: str | torch.device = "cpu") -> Backbone:
    """Build the configured open_clip model, with weights from a tag, a local file, or none."""
    name = config.backbone
    source = open_clip_source(name)
    pretrained = _resolve_pretrained(source, config.pretrained)
    try:
        with _open_clip_error_logs_dropped():
            clip = open_clip.create_model(source, pretrained=pretrained, device=device, cache_dir=config.cache_dir)
    except Exception as error:
        if pretrained is not None and os.path.isfile(pretrained):
            # safetensors, pickle and state-dict errors alike: the user gave a file that is not these weights
            raise InputError(f"model.pretrained '{pretrained}': not a checkpoint of '{name}': {_why_not_weights(error)}") from None
        if isinstance(error, (FileNotFoundError, ValueError)):
            raise InputError(f"model.backbone '{name}': {error}") from None
        if isinstance(error, RuntimeError):
            raise MstaError(
                f"could not load weights '{config.pretrained}' for '{name}': {str(error).rstrip('.')}. Without network "
                "access, point model.pretrained at a local checkpoint file."
            ) from None
        raise
    clip.requires_grad_(False)
    clip.eval()
    # A folder written by `msta pretrain-tiny` carries its compact vocabulary beside the weights.
    vocabulary = Path(source.removeprefix("local-dir:")) / VOCABULARY_FILE if source.startswith("local-dir:") else None
    tokenizer = CompactTokenizer.load(vocabulary) if vocabulary and vocabulary.is_file() else open_clip.get_tokenizer(name)
    return OpenClipFramewise(clip, tokenizer, name=name, pretrained=config.pretrained)


_QUOTED = re.compile(r'"[^"]+"')  # a key in torch's load_state_dict message


def _why_not_weights(error: Exception) -> str:
    """Why a local file did not load, short: torch lists every missing key of a state dict (13,888
    characters for msta-tiny), and its weights_only message suggests turning off the safe load."""
    text = str(error)
    if "in loading state_dict" in text:
        missing = text.partition("Missing key(s)")[2].partition("Unexpected key(s)")[0]
        unexpected = text.partition("Unexpected key(s)")[2].partition("size mismatch")[0]
        return (
            f"its tensors are another model's ({len(_QUOTED.findall(missing))} of this model's missing, "
            f"{len(_QUOTED.findall(unexpected))} unknown, {text.count('size mismatch for')} of another shape)"
        )
    if type(error).__name__ == "SafetensorError":
        return f"not a readable safetensors file ({text.strip().splitlines()[0] if text.strip() else 'unreadable'})"
    if "Weights only load failed" in text:  # torch's advice here would be to load unsafely
        return "not a readable PyTorch or safetensors checkpoint (not weights alone: msta loads nothing else)"
    first = text.strip().splitlines()[0][:120] if text.strip() else ""
    return f"not a readable PyTorch or safetensors checkpoint ({type(error).__name__}{': ' + first if first else ''})"


def _resolve_pretrained(name: str, pretrained: str) -> str | None:
    """Validate name and weights before open_clip starts a download that would fail late."""
    if name.startswith("local-dir:"):
        if not Path(name.removeprefix("local-dir:")).is_dir():
            raise InputError(f"model.backbone '{name}': folder not found")
        return None
    if name.startswith("hf-hub:"):
        return None
    if name not in open_clip.list_models():
        raise InputError(_unknown_choice("model.backbone", name, [TINY, *open_clip.list_models()]))
    if pretrained.lower() in NO_WEIGHTS:
        return None
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained in tags or os.path.isfile(pretrained):
        return pretrained
    if os.sep in pretrained or Path(pretrained).suffix:
        raise InputError(f"model.pretrained '{pretrained}': checkpoint file not found")
    raise InputError(_unknown_choice("model.pretrained", pretrained, [*tags, "none"], "or a local checkpoint file"))


def _unknown_choice(key: str, value: str, choices: list[str], extra: str = "") -> str:
    shown = ", ".join(choices[:40]) + (" ..." if len(choices) > 40 else "")
    return f"{key} '{value}' is unknown.{did_you_mean(value, choices)} Valid: {shown}{' ' + extra if extra else ''}"


def _text_transformer(clip: nn.Module, name: str) -> nn.Module:
    if hasattr(clip, "transformer"):
        return clip.transformer
    text_transformer = getattr(getattr(clip, "text", None), "transformer", None)
    if text_transformer is None or not hasattr(text_transformer, "resblocks"):
        raise InputError(f"model.backbone '{name}': MSTA needs an open_clip text transformer; this text tower has none")
    return text_transformer


def _preprocessing_of(clip: nn.Module) -> Preprocessing:
    config = open_clip.get_model_preprocess_cfg(clip)
    size = config["size"]
    return Preprocessing(
        size=int(size if isinstance(size, int) else size[0]),
        mean=tuple(float(v) for v in config["mean"]),
        std=tuple(float(v) for v in config["std"]),
        interpolation=str(config.get("interpolation", "bicubic")),
    )
