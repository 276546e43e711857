import math

import pytest
import torch
import torch.nn.functional as F

from msta_cli.core.loss import MstaLoss, consistency_loss


def test_consistency_is_zero_when_classes_equal_their_descriptions():
    classes = F.normalize(torch.randn(5, 8), dim=-1)
    assert consistency_loss(classes, classes.clone(), classes * 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_consistency_matches_a_hand_computed_example():
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    spatial = torch.tensor([[1.0, 1.0], [0.0, 2.0]])  # cos: 1/sqrt(2), 1
    temporal = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])  # cos: -1, 0
    expected = ((1 - 1 / math.sqrt(2)) + (1 - -1) + (1 - 1) + (1 - 0)) / 2
    assert consistency_loss(classes, spatial, temporal).item() == pytest.approx(expected)


def test_total_is_ce_plus_alpha_times_consistency():
    torch.manual_seed(0)
    logits, labels = torch.randn(4, 3, requires_grad=True), torch.tensor([0, 1, 2, 1])
    classes, spatial, temporal = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 8)
    loss = MstaLoss(consistency_weight=0.7, spatial=spatial, temporal=temporal)
    total, parts = loss(logits, labels, classes)
    expected = F.cross_entropy(logits, labels) + 0.7 * consistency_loss(classes, spatial, temporal)
    assert total.item() == pytest.approx(expected.item())
    assert parts["ce"].item() == pytest.approx(F.cross_entropy(logits, labels).item())
    assert parts["consistency"].item() == pytest.approx(consistency_loss(classes, spatial, temporal).item())
    assert total.requires_grad and not parts["ce"].requires_grad  # parts are for logging only


def test_weight_zero_is_plain_cross_entropy_and_needs_no_descriptions():
    logits, labels = torch.randn(2, 3), torch.tensor([2, 0])
    total, parts = MstaLoss(consistency_weight=0.0)(logits, labels, torch.randn(3, 8))
    assert total.item() == pytest.approx(F.cross_entropy(logits, labels).item())
    assert parts["consistency"].item() == 0.0


def test_gradient_of_consistency_reaches_class_embeddings():
    classes = torch.randn(3, 8, requires_grad=True)
    consistency_loss(classes, torch.randn(3, 8), torch.randn(3, 8)).backward()
    assert classes.grad.abs().sum() > 0
