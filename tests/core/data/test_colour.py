"""msta's colour operations and per-clip draws do what torchvision's transforms do to each clip."""

import itertools

import pytest
import torch
import torchvision.transforms.v2.functional as F

from msta_cli.core.data import colour

STRENGTHS = (0.4, 0.4, 0.2, 0.1)
TORCHVISION = {
    "brightness": F.adjust_brightness,
    "contrast": F.adjust_contrast,
    "saturation": F.adjust_saturation,
    "hue": F.adjust_hue,
}


def pictures(clips: int, frames: int = 3, size: int = 6, seed: int = 0) -> torch.Tensor:
    """Float clips in [0, 1] from five levels, so greys (no hue) and channel ties are common."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 5, (clips, frames, 3, size, size), generator=generator).float() / 4


def smooth_pictures(clips: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(clips, 3, 3, 6, 6, generator=torch.Generator().manual_seed(seed))


def near_greys(clips: int, seed: int = 2) -> torch.Tensor:
    """Greys off by at most 1e-6 per channel: a chroma near 0 must not blow up the hue."""
    generator = torch.Generator().manual_seed(seed)
    greys = torch.rand(clips, 3, 1, 6, 6, generator=generator)
    return greys + 1e-6 * torch.rand(clips, 3, 3, 6, 6, generator=generator)


@pytest.mark.parametrize("videos", [pictures(6), smooth_pictures(6), near_greys(6)],
                         ids=["levels", "smooth", "near greys"])
@pytest.mark.parametrize("index, name", list(enumerate(colour.JITTER_OPERATIONS)))
def test_each_jitter_operation_matches_torchvision(videos, index, name):
    low, high = (-0.5, 0.5) if name == "hue" else (0.0, 2.0)
    operation = (colour.adjust_brightness, colour.adjust_contrast, colour.adjust_saturation, colour.adjust_hue)[index]
    for clip, factor in zip(videos, torch.linspace(low, high, len(videos)).tolist()):
        torch.testing.assert_close(operation(clip, factor), TORCHVISION[name](clip, factor), atol=1e-5, rtol=0)


def test_hue_keeps_greys_and_a_zero_shift_changes_nothing():
    clip = smooth_pictures(1)[0]
    clip[:, :, :2, :2] = 0.3  # a grey patch has no hue to turn
    torch.testing.assert_close(colour.adjust_hue(clip, 0.0), clip, atol=1e-6, rtol=0)
    turned = colour.adjust_hue(clip, 0.25)
    assert torch.equal(turned[:, :, :2, :2], clip[:, :, :2, :2])
    assert not torch.allclose(turned, clip, atol=1e-2)


def test_flip_and_grayscale_match_torchvision():
    clip = smooth_pictures(1)[0]
    both = colour.ClipDraw(flip=True, jitter=False, order=[0, 1, 2, 3], factors=[1.0] * 4, grayscale=True)
    expected = F.rgb_to_grayscale(F.horizontal_flip(clip), num_output_channels=3)
    torch.testing.assert_close(colour.augment(clip, both, STRENGTHS), expected, atol=1e-6, rtol=0)


def reference(clip: torch.Tensor, choices: colour.ClipDraw, strengths) -> torch.Tensor:
    """What torchvision's RandomHorizontalFlip, ColorJitter and RandomGrayscale do to a clip,
    given the same choices."""
    if choices.flip:
        clip = F.horizontal_flip(clip)
    if choices.jitter:
        for index in choices.order:
            if strengths[index]:
                clip = TORCHVISION[colour.JITTER_OPERATIONS[index]](clip, choices.factors[index])
    if choices.grayscale:
        clip = F.rgb_to_grayscale(clip, num_output_channels=3)
    return clip


@pytest.mark.parametrize("strengths", [STRENGTHS, (0.4, 0.0, 0.0, 0.1), (0.0, 0.0, 0.0, 0.0)])
def test_each_clip_gets_its_own_draws_in_its_own_order(strengths):
    torch.manual_seed(3)
    videos = smooth_pictures(48)
    draws = colour.draw(48, 0.5, 0.8, strengths, 0.2)
    assert len({tuple(choices.order) for choices in draws}) > 12  # many orders in one batch
    for clip, choices in zip(videos, draws):
        torch.testing.assert_close(colour.augment(clip, choices, strengths), reference(clip, choices, strengths),
                                   atol=1e-5, rtol=0)


def test_draws_follow_the_probabilities_and_torchvisions_ranges():
    torch.manual_seed(0)
    draws = colour.draw(20000, 0.5, 0.8, STRENGTHS, 0.2)
    for name, p in (("flip", 0.5), ("jitter", 0.8), ("grayscale", 0.2)):
        assert sum(getattr(choices, name) for choices in draws) / len(draws) == pytest.approx(p, abs=0.02)
    factors = torch.tensor([choices.factors for choices in draws])
    for index, (low, high) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]):
        assert low <= factors[:, index].min().item() < low + 0.01
        assert high - 0.01 < factors[:, index].max().item() <= high
    orders = {tuple(choices.order) for choices in draws}
    assert orders == set(itertools.permutations(range(4)))


def test_strengths_above_one_never_give_negative_factors():
    torch.manual_seed(0)
    assert min(min(choices.factors[:3]) for choices in colour.draw(1000, 0, 1, (1.5, 2.0, 1.2, 0.5), 0)) >= 0
