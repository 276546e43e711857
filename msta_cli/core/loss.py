"""Training objective: CE over the label set + alpha * spatio-temporal consistency (METHOD.md 4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def consistency_loss(
    class_embeddings: torch.Tensor, spatial: torch.Tensor, temporal: torch.Tensor
) -> torch.Tensor:
    """mean over classes of (1 - cos(w_c, S_c)) + (1 - cos(w_c, T_c)); all (classes, dim)."""
    spatial_term = 1.0 - F.cosine_similarity(class_embeddings, spatial, dim=-1)
    temporal_term = 1.0 - F.cosine_similarity(class_embeddings, temporal, dim=-1)
    return (spatial_term + temporal_term).mean()


class MstaLoss(nn.Module):
    """L = CE(logits, y) + alpha * L_CC, with the description embeddings fixed at construction.

    The description embeddings come from the frozen text branch, so they are computed once by the
    caller (`MstaModel.description_embeddings`) and kept here as buffers.
    """

    def __init__(
        self,
        consistency_weight: float = 1.0,
        spatial: torch.Tensor | None = None,
        temporal: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        if consistency_weight and (spatial is None or temporal is None):
            raise ValueError("the consistency loss needs spatial and temporal description embeddings")
        self.consistency_weight = consistency_weight
        self.label_smoothing = label_smoothing
        self.register_buffer("spatial", spatial)
        self.register_buffer("temporal", temporal)

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, class_embeddings: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, its parts "ce" and "consistency" as detached 0-d tensors).

        The parts stay tensors: reading a number off the GPU waits for every queued kernel,
        which the training loop does only when it logs, not at every step.
        """
        classification = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        if not self.consistency_weight:
            return classification, {"ce": classification.detach(), "consistency": torch.zeros_like(classification)}
        consistency = consistency_loss(class_embeddings, self.spatial, self.temporal)
        total = classification + self.consistency_weight * consistency
        return total, {"ce": classification.detach(), "consistency": consistency.detach()}
