import copy

import open_clip
import pytest
import torch
import torch.nn.functional as F

from msta_cli.core.config import AdapterConfig, Config
from msta_cli.core.errors import InputError
from msta_cli.core import adapter
from msta_cli.core.model import MstaModel, create_model, gflops_per_view, parameter_summary

CLASSES = ["running", "jumping", "waving"]


def _clips(model: MstaModel, clips: int = 2, frames: int = 4) -> torch.Tensor:
    size = model.backbone.preprocessing.size
    return torch.randn(clips, frames, 3, size, size)


def test_only_adapters_train_and_backbone_is_bit_identical_after_a_step(tiny_model):
    backbone_before = copy.deepcopy(tiny_model.backbone.state_dict())
    trainable = [p for p in tiny_model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in tiny_model.adapters.parameters()}
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.1)
    logits = tiny_model(_clips(tiny_model), tiny_model.class_embeddings(CLASSES))
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    assert all(p.grad is None for p in tiny_model.backbone.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    optimizer.step()
    for name, tensor in tiny_model.backbone.state_dict().items():
        assert torch.equal(tensor, backbone_before[name]), name


def test_shared_projection_is_one_module_fed_by_both_towers(tiny_model):
    block = tiny_model.adapters["1"]
    assert sum(1 for m in tiny_model.modules() if m is block.shared) == 1

    def shared_grad(loss_of) -> torch.Tensor:
        tiny_model.zero_grad()
        loss_of().backward()
        return block.shared.weight.grad.clone()

    clips = _clips(tiny_model)
    text_only = shared_grad(lambda: tiny_model.class_embeddings(CLASSES).sum())
    video_only = shared_grad(lambda: tiny_model.encode_video(clips).sum())
    both = shared_grad(lambda: tiny_model.class_embeddings(CLASSES).sum() + tiny_model.encode_video(clips).sum())
    assert text_only.abs().sum() > 0 and video_only.abs().sum() > 0
    torch.testing.assert_close(both, text_only + video_only)


def test_gradient_scale_changes_adapter_gradients_not_the_forward(tiny_config):
    outputs, grads = {}, {}
    for gradient_scale in (True, False):
        tiny_config.adapter.gradient_scale = gradient_scale
        torch.manual_seed(0)
        model = create_model(tiny_config)
        clips = _clips(model)
        logits = model(clips, model.class_embeddings(CLASSES))
        logits.sum().backward()
        outputs[gradient_scale] = logits.detach()
        grads[gradient_scale] = model.adapters["2"].video_up.weight.grad
    torch.testing.assert_close(outputs[True], outputs[False], rtol=0, atol=0)
    torch.testing.assert_close(grads[True], grads[False] / tiny_config.adapter.scale)


def test_adapters_disabled_is_the_plain_backbone(tiny_model):
    clip = tiny_model.backbone.clip
    frames = _clips(tiny_model, clips=1, frames=3)
    with tiny_model.adapters_disabled(), torch.no_grad():
        video = tiny_model.encode_video(frames)
        plain = clip.encode_image(frames[0]).mean(dim=0, keepdim=True)
        adapted_off = tiny_model.class_embeddings(["waving"])
    torch.testing.assert_close(video, F.normalize(plain, dim=-1))
    with torch.no_grad():
        adapted_on = tiny_model.class_embeddings(["waving"])
    assert not torch.allclose(adapted_on, adapted_off)


def test_video_embedding_is_mean_of_frame_embeddings(tiny_model):
    frames = _clips(tiny_model, clips=2, frames=3)
    # Batched frames and one-at-a-time frames differ only when adapters mix frames: compare without them.
    with tiny_model.adapters_disabled(), torch.no_grad():
        video = tiny_model.backbone.encode_video(frames)
        first = torch.stack([tiny_model.backbone.clip.encode_image(frames[0, t : t + 1])[0] for t in range(3)])
    torch.testing.assert_close(video[0], first.mean(dim=0), atol=1e-5, rtol=1e-5)


def test_logits_use_the_backbones_frozen_scale(tiny_model):
    video = F.normalize(torch.randn(2, 32), dim=-1)
    classes = F.normalize(torch.randn(3, 32), dim=-1)
    scale = tiny_model.backbone.clip.logit_scale.exp()
    torch.testing.assert_close(tiny_model.logits(video, classes), scale * video @ classes.t())


def test_description_embeddings_are_frozen_and_normalised(tiny_model):
    embeddings = tiny_model.description_embeddings([["a person runs", "legs move fast"], ["a hand waves"]])
    assert embeddings.shape == (2, 32) and not embeddings.requires_grad
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2))
    with tiny_model.adapters_disabled(), torch.no_grad():
        expected = F.normalize(tiny_model.encode_texts(["a hand waves"])[0], dim=-1)
    torch.testing.assert_close(embeddings[1], expected)


def test_block_range_outside_backbone_is_an_input_error(tiny_config):
    tiny_config.adapter.blocks = [2, 3]
    with pytest.raises(InputError, match=r"blocks 1..2 exist"):
        create_model(tiny_config)


def test_train_mode_keeps_backbone_in_eval(tiny_model):
    tiny_model.train()
    assert tiny_model.adapters.training and not tiny_model.backbone.training


@pytest.mark.parametrize(
    ("bottleneck", "blocks", "trainable"),
    [(128, [8, 12], 1_744_000), (256, [1, 12], 8_712_192)],
)
def test_exact_trainable_counts_on_vit_b16(bottleneck, blocks, trainable):
    config = Config()
    config.model.pretrained = "none"
    config.adapter = AdapterConfig(bottleneck=bottleneck, blocks=blocks)
    summary = parameter_summary(create_model(config))
    backbone = sum(p.numel() for p in open_clip.create_model("ViT-B-16-quickgelu").parameters())
    assert summary["trainable"] == trainable
    assert summary["backbone"] == backbone
    assert summary["total"] == backbone + trainable
    assert sum(summary["per_part"].values()) == trainable
    assert summary["per_part"]["temporal_up"] == (3 * 768 + 768) * len(range(blocks[0], blocks[1] + 1))


def test_gflops_per_view_of_vit_b16_is_the_multiply_adds_of_its_layers():
    config = Config()
    config.model.pretrained = "none"
    tokens, width = 197, 768
    per_layer = tokens * width * (3 * width + width + 2 * 4 * width) + 2 * tokens * tokens * width  # linears + attention
    per_frame = 12 * per_layer + 196 * (3 * 16 * 16) * width + width * 512  # + patch embedding + projection
    model = create_model(config, adapters=False).eval()
    assert gflops_per_view(model, 1, 224) == pytest.approx(per_frame / 1e9, rel=1e-5)  # 17.56, as RESULTS.md says
    assert torch.backends.mha.get_fastpath_enabled()  # the inference fast path is back on after counting


def test_gflops_per_view_counts_the_grouped_temporal_convolution_not_its_dense_cpu_form(tiny_config):
    frames, tokens, width, r, blocks = 4, 17, 64, 16, 2  # tiny backbone: 32 px in 8 px patches + CLS
    per_token = width * r + r * r + r * width + 3 * width  # down, shared, spatial up, grouped temporal (k=3)
    with_adapters = gflops_per_view(create_model(tiny_config).eval(), frames, 32)
    without = gflops_per_view(create_model(tiny_config, adapters=False).eval(), frames, 32)
    assert (with_adapters - without) * 1e9 == pytest.approx(frames * tokens * blocks * per_token, rel=1e-6)
    assert adapter._dense_on_cpu  # training and inference on the CPU keep the faster dense form


def test_without_adapters_the_model_is_zero_shot_clip(tiny_config):
    model = create_model(tiny_config, adapters=False)
    assert len(model.adapters) == 0 and parameter_summary(model)["trainable"] == 0
    frames = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        expected = F.normalize(model.backbone.clip.encode_image(frames[0]).mean(dim=0, keepdim=True), dim=-1)
        torch.testing.assert_close(model.encode_video(frames), expected)


@pytest.mark.parametrize(
    ("towers", "vision_adapted", "text_adapted"), [("vision", True, False), ("text", False, True), ("both", True, True)]
)
def test_single_tower_ablations_adapt_only_their_tower(tiny_config, towers, vision_adapted, text_adapted):
    tiny_config.adapter.towers = towers
    torch.manual_seed(0)
    model = create_model(tiny_config)
    for block in model.adapters.values():
        torch.nn.init.normal_(block.shared.weight)
        for up in (block.video_up, block.text_up):
            if up is not None:
                torch.nn.init.normal_(up.weight)
    clips, prompts = _clips(model), ["a video of running."]
    with torch.no_grad():
        video, text = model.encode_video(clips), model.encode_texts(prompts)
        with model.adapters_disabled():
            plain_video, plain_text = model.encode_video(clips), model.encode_texts(prompts)
    assert torch.allclose(video, plain_video) != vision_adapted
    assert torch.allclose(text, plain_text) != text_adapted
    parts = parameter_summary(model)["per_part"]
    assert (parts["text_down"] > 0) == text_adapted and (parts["video_down"] > 0) == vision_adapted


def test_unshared_ablation_gives_the_video_tower_its_own_projection(tiny_config):
    tiny_config.adapter.shared = False
    model = create_model(tiny_config)
    block = model.adapters["1"]
    logits = model(_clips(model), model.class_embeddings(CLASSES))
    model.zero_grad()
    logits.sum().backward(retain_graph=True)
    assert block.video_private.weight.grad.abs().sum() > 0
    shared_count = parameter_summary(model)["per_part"]["shared"]
    assert parameter_summary(model)["per_part"]["video_private"] == shared_count


def test_full_finetuning_trains_the_backbone_but_not_the_logit_scale(tiny_config):
    tiny_config.adapter.finetune, tiny_config.adapter.towers = "full", "none"
    model = create_model(tiny_config)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert not model.adapters and trainable
    assert all(name.startswith("backbone.") and not name.endswith("logit_scale") for name in trainable)
    assert len(trainable) == sum(1 for name, _ in model.backbone.named_parameters()) - 1


def test_no_towers_without_full_finetuning_is_an_input_error(tiny_config):
    tiny_config.adapter.towers = "none"
    with pytest.raises(InputError, match="finetune: full"):
        create_model(tiny_config)


def test_zero_up_init_starts_at_the_zero_shot_model_and_still_learns(tiny_config):
    tiny_config.adapter.scale, tiny_config.adapter.gradient_scale, tiny_config.adapter.up_init = 1.0, False, "zero"
    torch.manual_seed(0)
    adapted = create_model(tiny_config, torch.device("cpu"))
    frozen = create_model(tiny_config, torch.device("cpu"), adapters=False)
    clips = _clips(adapted)
    with torch.no_grad():
        torch.testing.assert_close(adapted(clips, adapted.class_embeddings(CLASSES)),
                                   frozen(clips, frozen.class_embeddings(CLASSES)))
    optimizer = torch.optim.AdamW([p for p in adapted.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):  # step 1 moves only the up-projections; from step 2 the rest gets gradients
        optimizer.zero_grad()
        F.cross_entropy(adapted(clips, adapted.class_embeddings(CLASSES)), torch.tensor([0, 2])).backward()
        optimizer.step()
    block = adapted.adapters["1"]
    assert block.video_down.weight.grad.abs().sum() > 0 and block.temporal_up.weight.abs().sum() > 0


def test_unknown_up_init_is_an_input_error(tiny_config):
    tiny_config.adapter.up_init = "orthogonal"
    with pytest.raises(InputError, match="up_init"):
        create_model(tiny_config, torch.device("cpu"))
