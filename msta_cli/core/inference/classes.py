"""Class embeddings: a label set's names and their text embeddings, computed once per set."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from msta_cli.core.inference.runtime import autocast
from msta_cli.core.model import MstaModel


@dataclass
class Classes:
    """(C, D) L2-normalised embeddings, row i for `names[i]`."""

    names: tuple[str, ...]
    embeddings: torch.Tensor


def embed_classes(model: MstaModel, names: tuple[str, ...], precision: str = "fp32") -> Classes:
    """Run the (adapted) text tower once over every name x template; callers keep the result."""
    device = next(model.parameters()).device
    with torch.inference_mode(), autocast(device, precision):
        embeddings = model.class_embeddings(list(names)).float()
    return Classes(tuple(names), embeddings)
