"""Train augmentation is shared by a clip's frames; test views sit where they should."""

import pytest
import torch

from msta_cli.core.data import transforms

MEAN = (0.1, 0.2, 0.3)
STD = (0.5, 0.25, 0.125)


def still_clips(batch: int, frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Clips whose frames are all the same random picture (the same picture in every clip)."""
    picture = torch.randint(0, 256, (height, width, 3), generator=torch.Generator().manual_seed(seed))
    return picture.to(torch.uint8).expand(batch, frames, height, width, 3).contiguous()


def plain(**overrides) -> transforms.TrainTransform:
    """A train transform with every random step off."""
    settings = dict(mean=MEAN, std=STD, size=16, scales=(1.0,), flip_p=0, jitter_p=0, grayscale_p=0)
    return transforms.TrainTransform(**(settings | overrides))


def normalised(values: torch.Tensor) -> torch.Tensor:
    """uint8 values (..., 3) as the transforms should normalise them, channels last."""
    return (values.float() / 255 - torch.tensor(MEAN)) / torch.tensor(STD)


def test_train_output_shape_and_dtype():
    out = transforms.TrainTransform(MEAN, STD, size=16)(still_clips(2, 4, 30, 40))
    assert out.shape == (2, 4, 3, 16, 16)
    assert out.dtype == torch.float32


def test_train_rejects_float_input():
    with pytest.raises(ValueError, match="uint8"):
        transforms.TrainTransform(MEAN, STD)(torch.zeros(1, 2, 8, 8, 3))


def test_same_augmentation_for_every_frame_of_a_clip_and_different_across_clips():
    torch.manual_seed(0)
    out = transforms.TrainTransform(MEAN, STD, size=16)(still_clips(8, 4, 30, 40))
    for clip in out:
        assert all(torch.equal(frame, clip[0]) for frame in clip)
    distinct = {tuple(clip[0].flatten().tolist()) for clip in out}
    assert len(distinct) > 1


def test_train_is_reproducible_with_manual_seed():
    clips = still_clips(3, 2, 30, 40)
    torch.manual_seed(5)
    first = transforms.TrainTransform(MEAN, STD, size=16)(clips)
    torch.manual_seed(5)
    assert torch.equal(transforms.TrainTransform(MEAN, STD, size=16)(clips), first)


def test_normalisation_uses_the_given_mean_and_std():
    colour = torch.tensor([10, 128, 250], dtype=torch.uint8)
    clips = colour.expand(1, 2, 16, 16, 3).contiguous()
    out = plain()(clips)
    expected = normalised(colour)[None, None, :, None, None].expand_as(out)
    assert torch.allclose(out, expected, atol=1e-5)


def test_flip_mirrors_the_clip():
    clips = still_clips(1, 2, 16, 16)
    assert torch.equal(plain(flip_p=1)(clips), plain()(clips).flip(-1))


def test_crop_boxes_stay_inside_the_frame_with_near_square_aspect():
    transform = transforms.TrainTransform(MEAN, STD)
    lengths = {int(240 * s) for s in transform.scales}
    for _ in range(200):
        top, left, height, width = transform._crop_box(240, 320)
        assert 0 <= top and top + height <= 240
        assert 0 <= left and left + width <= 320
        assert {height, width} <= lengths
        ordered = sorted(lengths, reverse=True)
        assert abs(ordered.index(height) - ordered.index(width)) <= 1


def test_padded_clips_are_cropped_inside_their_real_size():
    clips = still_clips(1, 2, 16, 16)
    padded = torch.zeros(1, 2, 20, 30, 3, dtype=torch.uint8)
    padded[:, :, :16, :16] = clips
    out = plain()(padded, sizes=torch.tensor([[16, 16]]))
    assert torch.equal(out, plain()(clips))


def ramp(batch: int, clips: int, height: int, width: int) -> torch.Tensor:
    """Pixels whose value is their column (times 5), offset by 40 * clip index."""
    columns = torch.arange(width) * 5
    frame = columns.expand(height, width)[..., None].expand(height, width, 3)
    video = torch.stack([frame + 40 * k for k in range(clips)])[:, None]
    return video.expand(batch, clips, 2, height, width, 3).to(torch.uint8).contiguous()


def test_three_test_crops_along_the_long_side_in_clip_major_order():
    videos = ramp(batch=2, clips=2, height=16, width=48)
    out = transforms.TestTransform(MEAN, STD, size=16, crops=3)(videos)
    assert out.shape == (2, 6, 2, 3, 16, 16)
    for view in range(6):
        clip, crop = divmod(view, 3)
        expected = normalised(videos[:, clip, :, :, 16 * crop : 16 * (crop + 1)])
        assert torch.allclose(out[:, view], expected.permute(0, 1, 4, 2, 3), atol=1e-5)


def test_one_test_crop_is_the_centre_and_portrait_crops_run_down():
    videos = ramp(batch=1, clips=1, height=16, width=48).transpose(3, 4).contiguous()
    centre = transforms.TestTransform(MEAN, STD, size=16, crops=1)(videos)
    assert centre.shape == (1, 1, 2, 3, 16, 16)
    expected = normalised(videos[:, 0, :, 16:32]).permute(0, 1, 4, 2, 3)
    assert torch.allclose(centre[:, 0], expected, atol=1e-5)
    three = transforms.TestTransform(MEAN, STD, size=16, crops=3)(videos)
    assert torch.allclose(three[:, 1], centre[:, 0])
    assert not torch.allclose(three[:, 0], three[:, 2])


def test_test_views_resize_the_short_side_and_are_deterministic():
    videos = ramp(batch=1, clips=1, height=32, width=96)
    transform = transforms.TestTransform(MEAN, STD, size=16, crops=3)
    out = transform(videos)
    assert out.shape == (1, 3, 2, 3, 16, 16)
    assert torch.equal(out, transform(videos))


def test_test_views_of_a_padded_batch_match_unpadded():
    videos = ramp(batch=2, clips=1, height=16, width=48)
    padded = torch.zeros(2, 1, 2, 20, 60, 3, dtype=torch.uint8)
    padded[..., :16, :48, :] = videos
    transform = transforms.TestTransform(MEAN, STD, size=16, crops=3)
    out = transform(padded, sizes=torch.tensor([[16, 48], [16, 48]]))
    assert torch.equal(out, transform(videos))


def test_test_crops_must_be_one_or_three():
    with pytest.raises(ValueError, match="1 or 3"):
        transforms.TestTransform(MEAN, STD, crops=2)
