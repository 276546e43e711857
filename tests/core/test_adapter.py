import pytest
import torch

from msta_cli.core.adapter import MstaBlockAdapter, TemporalConv
from msta_cli.core.backbone import FramewiseLayout
from msta_cli.core.errors import InputError

VISION, TEXT, RANK, FRAMES, TOKENS = 64, 48, 16, 6, 5


def _layout(frames: int = FRAMES) -> FramewiseLayout:
    layout = FramewiseLayout()
    layout.num_frames = frames
    return layout


def _frames_changed(adapter: MstaBlockAdapter, perturbed_frame: int, clips: int = 2) -> set[tuple[int, int]]:
    torch.manual_seed(0)
    tokens = torch.randn(clips * FRAMES, TOKENS, VISION)
    changed = tokens.clone()
    changed[perturbed_frame] += torch.randn(TOKENS, VISION)  # frame `perturbed_frame` of clip 0
    with torch.no_grad():
        before = adapter.video(tokens, _layout()).reshape(clips, FRAMES, TOKENS, VISION)
        after = adapter.video(changed, _layout()).reshape(clips, FRAMES, TOKENS, VISION)
    moved = (after - before).abs().amax(dim=(2, 3)) > 1e-6
    return {(clip, frame) for clip, frame in moved.nonzero().tolist()}


@pytest.mark.parametrize("temporal", ["grouped", "depthwise"])
def test_temporal_path_mixes_only_neighbouring_frames(temporal):
    adapter = MstaBlockAdapter(VISION, TEXT, RANK, temporal=temporal)
    assert _frames_changed(adapter, perturbed_frame=3) == {(0, 2), (0, 3), (0, 4)}
    assert _frames_changed(adapter, perturbed_frame=0) == {(0, 0), (0, 1)}


@pytest.mark.parametrize("path", ["forward", "dense_over_frames", "conv1d_over_frames"])
@pytest.mark.parametrize("in_channels, out_channels, groups", [(16, 64, 16), (8, 64, 4), (64, 64, 64)])
def test_temporal_conv_matches_torch_conv1d_over_frames_forward_and_backward(in_channels, out_channels, groups, path):
    """Both ways of computing it (the CPU's dense matmul, PyTorch's kernel on a GPU) agree with Conv1d."""
    torch.manual_seed(0)
    ours = TemporalConv(in_channels, out_channels, groups=groups)
    reference = torch.nn.Conv1d(in_channels, out_channels, 3, padding=1, groups=groups)
    reference.load_state_dict(ours.state_dict())
    series = torch.randn(2, FRAMES, TOKENS, in_channels, requires_grad=True)
    per_token = series.permute(0, 2, 3, 1).reshape(2 * TOKENS, in_channels, FRAMES)
    expected = reference(per_token).reshape(2, TOKENS, out_channels, FRAMES).permute(0, 3, 1, 2)
    got = getattr(ours, path)(series)
    torch.testing.assert_close(got, expected)
    upstream = torch.randn_like(got)
    (expected_input_grad,) = torch.autograd.grad(expected, series, upstream, retain_graph=True)
    expected.backward(upstream)
    (input_grad,) = torch.autograd.grad(got, series, upstream, retain_graph=True)
    got.backward(upstream)
    torch.testing.assert_close(input_grad, expected_input_grad)
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad)
    torch.testing.assert_close(ours.bias.grad, reference.bias.grad)


def test_without_temporal_path_nothing_crosses_frames():
    adapter = MstaBlockAdapter(VISION, TEXT, RANK, temporal="none")
    assert _frames_changed(adapter, perturbed_frame=3) == {(0, 3)}


def test_parameter_count_per_block_matches_method():
    adapter = MstaBlockAdapter(768, 512, 128)
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in adapter.named_children()}
    assert counts == {
        "text_down": 512 * 128 + 128,
        "video_down": 768 * 128 + 128,
        "shared": 128 * 128 + 128,
        "text_up": 128 * 512 + 512,
        "video_up": 128 * 768 + 768,
        "temporal_up": 3 * 768 + 768,
    }
    depthwise = MstaBlockAdapter(768, 512, 128, temporal="depthwise")
    assert sum(p.numel() for p in depthwise.parameters()) == sum(p.numel() for p in adapter.parameters())


def test_kaiming_fan_out_init_and_zero_biases():
    torch.manual_seed(0)
    adapter = MstaBlockAdapter(768, 512, 256)
    assert all(torch.count_nonzero(module.bias) == 0 for module in adapter.children())
    # kaiming_normal_(mode="fan_out", relu): std = sqrt(2 / fan_out); fan_out of Linear(768 -> 256) is 256.
    assert adapter.video_down.weight.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.02)


def test_grouped_temporal_needs_bottleneck_dividing_width():
    with pytest.raises(InputError, match="must divide the vision width 64"):
        MstaBlockAdapter(64, 48, 24)


def test_text_adapter_shapes():
    adapter = MstaBlockAdapter(VISION, TEXT, RANK)
    assert adapter.text(torch.randn(3, 7, TEXT)).shape == (3, 7, TEXT)
