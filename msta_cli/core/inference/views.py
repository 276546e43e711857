"""Test views for prediction (the evaluator's `Views`, CLIPSxCROPS) and turning their logits
into one score per class, averaged as `msta evaluate` does."""

from __future__ import annotations

import torch

from msta_cli.core.data.transforms import TestTransform
from msta_cli.core.evaluation.evaluator import Views
from msta_cli.core.inference.predictor import Predictor

__all__ = ["Views", "test_transform", "top_k", "view_probabilities"]


def test_transform(predictor: Predictor, views: Views) -> TestTransform:
    """uint8 (B, clips, T, H, W, 3) -> normalised (B, clips x crops, T, 3, S, S) for this model."""
    preprocessing = predictor.preprocessing
    return TestTransform(preprocessing.mean, preprocessing.std, preprocessing.size, views.crops)


def view_probabilities(predictor: Predictor, views: torch.Tensor) -> torch.Tensor:
    """(B, V, T, 3, S, S) views -> (B, classes): the softmax over classes, averaged over views."""
    logits = predictor.logits(views.flatten(0, 1))
    return logits.softmax(dim=-1).unflatten(0, views.shape[:2]).mean(dim=1)


def top_k(probabilities: torch.Tensor, labels: tuple[str, ...], k: int) -> list[tuple[str, float]]:
    """The k most probable (label, probability) pairs, best first."""
    values, indices = probabilities.topk(min(k, len(labels)))
    return [(labels[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]
