"""The MSTA adapter of one transformer block (METHOD.md section 2).

Per adapted block j: modality-specific down-projections (+ReLU), one shared r x r projection
(+ReLU) used by both towers, a text up-projection, and a video up-projection made of a spatial
Linear plus a temporal convolution over the frame axis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from msta_cli.core.backbone import TokenLayout
from msta_cli.core.errors import InputError

TEMPORAL_KINDS = ("grouped", "depthwise", "none")
UP_INITS = ("kaiming", "zero")


class ScaleGradient(torch.autograd.Function):
    """Identity forward; multiplies the gradient by `factor` on the way back."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.factor, None


def scale_gradient(tensor: torch.Tensor, factor: float) -> torch.Tensor:
    """The identity where no gradient flows (inference, and so exports: torch.jit.trace cannot
    record a Python autograd Function)."""
    return ScaleGradient.apply(tensor, factor) if tensor.requires_grad else tensor


_dense_on_cpu = True


@contextlib.contextmanager
def pytorch_temporal_kernel() -> Iterator[None]:
    """Every TemporalConv runs PyTorch's kernel, on the CPU too: a FLOP count then counts the
    grouped convolution's own multiply-adds, not the dense form's products with zeros."""
    global _dense_on_cpu
    previous, _dense_on_cpu = _dense_on_cpu, False
    try:
        yield
    finally:
        _dense_on_cpu = previous


class TemporalConv(nn.Conv1d):
    """A kernel-3 convolution over the frame axis of (clips, frames, tokens, channels) tokens.

    The parameters are nn.Conv1d's (same state-dict keys). On the CPU the grouped forward is
    hand-written for speed: PyTorch's CPU kernel for grouped convolutions with one input channel
    per group (METHOD's r -> d_v temporal up-projection) ran 6x slower, forward plus backward,
    than one dense matmul over the three frame-shifted copies with the weight masked to each
    group (r = 32, d_v = 128, 8 frames, one thread; 1.27x at ViT-B/16's r = 128, d_v = 768;
    bench/temporal_conv.py), and it needed the tokens permuted to (.., channels, frames). On a
    GPU the dense form lost (0.30x and 0.84x on an H200), so there, as for depthwise
    convolutions everywhere, PyTorch's own kernel runs.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3, padding=1, groups=groups)
        # The dense form's weight index and group mask are buffers, not tensors made in forward:
        # a traced export (TorchScript) would keep those on the device it was traced on, while
        # buffers move with the module (and are no part of the state dict).
        per_group_in, per_group_out = in_channels // groups, out_channels // groups
        inputs, outputs = torch.arange(in_channels), torch.arange(out_channels)
        self.register_buffer("tap_index", inputs % per_group_in, persistent=False)
        self.register_buffer("group_mask", inputs[:, None] // per_group_in == outputs[None, :] // per_group_out, persistent=False)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        if self.groups == self.out_channels or series.device.type != "cpu" or not _dense_on_cpu:
            return self.conv1d_over_frames(series)
        return self.dense_over_frames(series)

    def conv1d_over_frames(self, series: torch.Tensor) -> torch.Tensor:
        """PyTorch's convolution kernel, on the tokens permuted to (clips * tokens, channels, frames)."""
        clips, frames, tokens, channels = series.shape
        per_token = series.permute(0, 2, 3, 1).reshape(clips * tokens, channels, frames)
        mixed = super().forward(per_token).reshape(clips, tokens, self.out_channels, frames)
        return mixed.permute(0, 3, 1, 2)

    def dense_over_frames(self, series: torch.Tensor) -> torch.Tensor:
        """One matmul over the frame-shifted copies with the grouped weight made dense."""
        previous = F.pad(series[:, :-1], (0, 0, 0, 0, 1, 0))  # frame t-1; zeros before the first
        following = F.pad(series[:, 1:], (0, 0, 0, 0, 0, 1))
        return torch.cat([previous, series, following], dim=-1) @ self.dense_weight() + self.bias

    def dense_weight(self) -> torch.Tensor:
        """(3 * in, out): tap k of output o on input i, zero where i is outside o's group."""
        taps = self.weight[:, self.tap_index, :].permute(2, 1, 0)  # (3, in, out)
        return (taps * self.group_mask).reshape(3 * self.in_channels, self.out_channels)


class MstaBlockAdapter(nn.Module):
    """Both towers' adapters for one block; `shared` is the single module they have in common."""

    def __init__(
        self, vision_width: int, text_width: int, bottleneck: int, temporal: str = "grouped",
        shared: bool = True, towers: str = "both", up_init: str = "kaiming",
    ):
        super().__init__()
        if temporal not in TEMPORAL_KINDS:
            raise InputError(f"adapter.temporal must be one of {', '.join(TEMPORAL_KINDS)}; got {temporal!r}")
        if temporal == "grouped" and vision_width % bottleneck:
            raise InputError(
                f"adapter.bottleneck {bottleneck} must divide the vision width {vision_width} "
                "for the grouped temporal convolution (groups = bottleneck)"
            )
        if up_init not in UP_INITS:
            raise InputError(f"adapter.up_init must be one of {', '.join(UP_INITS)}; got {up_init!r}")
        self.temporal = temporal
        self.up_init = up_init
        # Only the adapted towers' parts exist, so parameter counts and DDP see exactly what trains.
        self.text_down = nn.Linear(text_width, bottleneck) if towers in ("both", "text") else None
        self.text_up = nn.Linear(bottleneck, text_width) if towers in ("both", "text") else None
        self.video_down = nn.Linear(vision_width, bottleneck) if towers in ("both", "vision") else None
        self.video_up = nn.Linear(bottleneck, vision_width) if towers in ("both", "vision") else None
        self.shared = nn.Linear(bottleneck, bottleneck)
        # The "without shared projection" ablation: the video tower gets its own r x r projection.
        self.video_private = nn.Linear(bottleneck, bottleneck) if not shared and towers == "both" else None
        # The temporal up-projection: 3 * d_v weights + d_v biases either way (METHOD.md 2.4).
        if self.video_up is None or temporal == "none":
            self.temporal_up = None
        elif temporal == "grouped":
            self.temporal_up = TemporalConv(bottleneck, vision_width, groups=bottleneck)
        else:
            self.temporal_up = TemporalConv(vision_width, vision_width, groups=vision_width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        if self.up_init == "zero":
            for module in (self.text_up, self.video_up, self.temporal_up):
                if module is not None:
                    nn.init.zeros_(module.weight)

    def text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Text adapter on ln_1(x) of a text block: (..., d_t) -> (..., d_t)."""
        hidden = F.relu(self.shared(F.relu(self.text_down(tokens))))
        return self.text_up(hidden)

    def video(self, tokens: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        """Video adapter on ln_1(x) of a vision block; only the temporal path crosses frames."""
        middle = self.shared if self.video_private is None else self.video_private
        hidden = F.relu(middle(F.relu(self.video_down(tokens))))
        spatial = self.video_up(hidden)
        if self.temporal_up is None:
            return spatial
        temporal_input = hidden if self.temporal == "grouped" else spatial
        return spatial + layout.over_frames(temporal_input, self.temporal_up)
