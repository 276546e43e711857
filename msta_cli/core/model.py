"""A frozen backbone with MSTA adapters attached to a range of blocks in both towers.

Adapters attach through forward hooks, `output + lambda * adapter(ln_1(input))`, so the
backbone's module tree and state dict stay exactly open_clip's and the adapters have a single
owner (`MstaModel.adapters`), which is what gets saved.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from msta_cli.core.adapter import MstaBlockAdapter, pytorch_temporal_kernel, scale_gradient
from msta_cli.core.backbone import Backbone, load_backbone
from msta_cli.core.config import AdapterConfig, Config
from msta_cli.core.errors import InputError

ADAPTER_PARTS = ("text_down", "text_up", "shared", "video_private", "video_down", "video_up", "temporal_up")


class MstaModel(nn.Module):
    """Frozen video-language backbone + trainable MSTA adapters.

    With `adapter=None` it is the plain backbone (zero-shot CLIP) behind the same interface, so
    the zero-shot baseline is measured by exactly the same code as the adapted model.
    """

    def __init__(self, backbone: Backbone, adapter: AdapterConfig | None, templates: list[str]):
        super().__init__()
        self.backbone = backbone
        self.adapter_config = adapter
        self.templates = list(templates)
        self.backbone.requires_grad_(False)
        self.adapters = nn.ModuleDict()
        self._adapters_active = True
        self.adapted_blocks: list[int] = []
        if adapter is not None:
            self._attach(adapter)

    def _attach(self, adapter: AdapterConfig) -> None:
        backbone = self.backbone
        self.scale = adapter.scale
        self.gradient_scale = adapter.gradient_scale
        if adapter.finetune == "full":
            for name, parameter in backbone.named_parameters():
                parameter.requires_grad_(not name.endswith("logit_scale"))
        elif adapter.towers == "none":
            raise InputError("adapter.towers: none leaves nothing to train; use it with adapter.finetune: full")
        if adapter.towers == "none":
            return
        self.adapted_blocks = _block_range(adapter.blocks, len(backbone.vision_blocks), len(backbone.text_blocks))
        for block in self.adapted_blocks:
            self.adapters[str(block)] = MstaBlockAdapter(
                backbone.vision_width, backbone.text_width, adapter.bottleneck, adapter.temporal,
                adapter.shared, adapter.towers, adapter.up_init,
            )
        for block in self.adapted_blocks:
            block_adapter = self.adapters[str(block)]
            layout = backbone.token_layout
            if adapter.towers in ("both", "vision"):
                backbone.vision_blocks[block - 1].register_forward_hook(
                    self._residual_hook(lambda x, a=block_adapter: a.video(x, layout)), with_kwargs=True
                )
            if adapter.towers in ("both", "text"):
                backbone.text_blocks[block - 1].register_forward_hook(
                    self._residual_hook(block_adapter.text), with_kwargs=True
                )

    def _residual_hook(self, branch: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
        def hook(block: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> torch.Tensor:
            if not self._adapters_active:
                return output
            block_input = args[0] if args else kwargs["q_x"]
            branch_input = block.ln_1(block_input)
            if not self.gradient_scale:
                return output + self.scale * branch(branch_input)
            # Adapter weights see gradients as if scale were 1; everything else sees the true ones.
            adapted = branch(scale_gradient(branch_input, self.scale))
            return output + self.scale * scale_gradient(adapted, 1.0 / self.scale)

        return hook

    def train(self, mode: bool = True) -> "MstaModel":
        super().train(mode)
        self.backbone.eval()
        return self

    @contextlib.contextmanager
    def adapters_disabled(self) -> Iterator[None]:
        """The frozen branch: the same backbone with every adapter switched off."""
        previous = self._adapters_active
        self._adapters_active = False
        try:
            yield
        finally:
            self._adapters_active = previous

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """(clips, frames, 3, H, W) normalised float -> (clips, embed_dim), L2-normalised."""
        return F.normalize(self.backbone.encode_video(frames), dim=-1)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Texts -> (texts, embed_dim), L2-normalised, through the adapted text tower."""
        device = next(self.backbone.parameters()).device
        tokens = self.backbone.tokenize(texts).to(device)
        return F.normalize(self.backbone.encode_text(tokens), dim=-1)

    def prompt_tokens(self, class_names: list[str]) -> torch.Tensor:
        """Token ids of every (class, template) prompt, class-major; tokenise once, embed often."""
        prompts = [template.format(name) for name in class_names for template in self.templates]
        device = next(self.backbone.parameters()).device
        return self.backbone.tokenize(prompts).to(device)

    def embed_prompts(self, tokens: torch.Tensor, num_classes: int) -> torch.Tensor:
        """One embedding per class: the normalised mean over its templates' embeddings."""
        embeddings = F.normalize(self.backbone.encode_text(tokens), dim=-1)
        return F.normalize(embeddings.reshape(num_classes, len(self.templates), -1).mean(dim=1), dim=-1)

    def class_embeddings(self, class_names: list[str]) -> torch.Tensor:
        return self.embed_prompts(self.prompt_tokens(class_names), len(class_names))

    @torch.no_grad()
    def description_embeddings(self, descriptions: list[list[str]]) -> torch.Tensor:
        """Frozen-branch embedding per class: normalised mean of its N normalised sentences."""
        counts = [len(sentences) for sentences in descriptions]
        flat = [sentence for sentences in descriptions for sentence in sentences]
        with self.adapters_disabled():
            embeddings = self.encode_texts(flat)
        per_class = torch.split(embeddings, counts)
        return F.normalize(torch.stack([group.mean(dim=0) for group in per_class]), dim=-1)

    def logits(self, video_embeddings: torch.Tensor, class_embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine similarity times the backbone's own frozen logit scale."""
        return self.backbone.logit_scale() * video_embeddings @ class_embeddings.t()

    def forward(self, frames: torch.Tensor, class_embeddings: torch.Tensor) -> torch.Tensor:
        return self.logits(self.encode_video(frames), class_embeddings)


def create_model(config: Config, device: str | torch.device = "cpu", adapters: bool = True) -> MstaModel:
    """The configured backbone with the configured adapters (or none: zero-shot), on `device`."""
    backbone = load_backbone(config.model, device)
    return MstaModel(backbone, config.adapter if adapters else None, config.text.templates).to(device)


def parameter_summary(model: MstaModel) -> dict:
    """Totals and the per-part split the paper reports (trainable = adapters only)."""
    backbone = sum(p.numel() for p in model.backbone.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = backbone + sum(p.numel() for p in model.adapters.parameters())
    parts = {part: 0 for part in ADAPTER_PARTS} if model.adapters else {}
    for name, parameter in model.adapters.named_parameters():
        parts[name.split(".")[1]] += parameter.numel()
    return {
        "total": total,
        "trainable": trainable,
        "trainable_percent": round(100.0 * trainable / total, 4),
        "backbone": backbone,
        "trainable_percent_of_backbone": round(100.0 * trainable / backbone, 4),
        "adapted_blocks": model.adapted_blocks,
        "per_part": parts,
    }


@torch.no_grad()
def gflops_per_view(model: MstaModel, num_frames: int, size: int) -> float:
    """Billions of multiply-adds to encode one view (num_frames frames of size x size), adapters
    included: the field's "GFLOPs per view" (fvcore's count, one multiply-add = one FLOP; X-CLIP
    reports 145 for B/16 8x224). Scoring against cached class embeddings adds a negligible
    matrix product; the text tower runs once per test set, not per view."""
    device = next(model.parameters()).device
    # torch's counter knows the CUDA attention kernels but not the CPU one: without this entry a
    # CPU count leaves attention out (16.85 instead of 17.56 per B/16 frame)
    counter = FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}
    )
    # nn.MultiheadAttention's inference fast path is one fused op the counter does not know: its
    # projections and attention would go uncounted (11.3 instead of 17.6 per B/16 frame)
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with counter, pytorch_temporal_kernel():
            model.encode_video(torch.zeros(1, num_frames, 3, size, size, device=device))
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    return counter.get_total_flops() / 2 / 1e9


def _attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _block_range(blocks: list[int], vision_depth: int, text_depth: int) -> list[int]:
    if len(blocks) != 2:
        raise InputError(f"adapter.blocks must be [start, end] (1-indexed, inclusive); got {blocks}")
    start, end = blocks
    depth = min(vision_depth, text_depth)
    if not 1 <= start <= end <= depth:
        raise InputError(
            f"adapter.blocks [{start}, {end}] is outside this backbone: blocks 1..{depth} exist in both towers "
            f"(vision {vision_depth}, text {text_depth})"
        )
    return list(range(start, end + 1))
