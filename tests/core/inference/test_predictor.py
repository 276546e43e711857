import pytest
import torch

from msta_cli.core.checkpoint import save_adapter
from msta_cli.core.config import Config, ModelConfig
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError
from msta_cli.core.inference import predictor as predictor_module
from msta_cli.core.inference.batch import predict_videos
from msta_cli.core.inference.classes import Classes
from msta_cli.core.inference.exported import ExportedEncoder
from msta_cli.core.inference.export import export_model
from msta_cli.core.inference.labels import LabelSet
from msta_cli.core.inference.predictor import ExportedPredictor, ModelOptions, load_predictor
from msta_cli.core.model import MstaModel, create_model
from tests.core.inference.helpers import FRAMES, SAMPLING, tiny_adapted_model, write_checkpoint
from tests.helpers.videos import write_video

LABELS = LabelSet(("run", "jump", "swim"), "test")
CPU = ModelOptions(device="cpu", num_frames=FRAMES)


def _clips(count: int = 2) -> torch.Tensor:
    return torch.randn(count, FRAMES, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def _expected(model: MstaModel, names=LABELS.names) -> torch.Tensor:
    with torch.no_grad():
        return model(_clips(), model.class_embeddings(list(names)))


def test_zero_shot_is_the_plain_backbone_with_default_templates(tiny_backbone_name):
    predictor = load_predictor(None, LABELS, ModelOptions(backbone=tiny_backbone_name, device="cpu"))
    assert predictor.description.startswith("zero-shot") and predictor.sampling == ClipSampling(8)
    plain = create_model(Config(model=ModelConfig(backbone=tiny_backbone_name)), adapters=False)
    torch.testing.assert_close(predictor.logits(_clips()), _expected(plain))


def test_checkpoint_predictor_reproduces_the_model(tmp_path, tiny_backbone_name):
    predictor = load_predictor(str(write_checkpoint(tmp_path / "ckpt", tiny_backbone_name)), LABELS, CPU)
    assert predictor.labels == LABELS.names and predictor.sampling == SAMPLING
    torch.testing.assert_close(predictor.logits(_clips()), _expected(tiny_adapted_model(tiny_backbone_name)))


def test_class_embeddings_are_computed_once_for_all_videos(tmp_path, tiny_backbone_name, monkeypatch):
    calls = []
    original = MstaModel.class_embeddings
    monkeypatch.setattr(MstaModel, "class_embeddings", lambda self, names: calls.append(names) or original(self, names))
    predictor = load_predictor(str(write_checkpoint(tmp_path / "ckpt", tiny_backbone_name)), LABELS, CPU)
    videos = [write_video(tmp_path / f"{i}.mp4", num_frames=12) for i in range(3)]
    assert len(list(predict_videos(predictor, videos, batch_size=1))) == 3
    assert calls == [list(LABELS.names)]


def test_merged_label_set_is_reused_and_other_labels_are_embedded(tmp_path, tiny_backbone_name, monkeypatch):
    model = tiny_adapted_model(tiny_backbone_name)
    carried = Classes(("a", "b"), torch.nn.functional.normalize(torch.randn(2, 32), dim=-1))
    export_model(model, "merged", tmp_path / "m.safetensors", SAMPLING, carried)
    with_carried = load_predictor(str(tmp_path / "m.safetensors"), None, ModelOptions(device="cpu"))
    assert with_carried.labels == ("a", "b") and with_carried.sampling == SAMPLING
    torch.testing.assert_close(with_carried.classes.embeddings, carried.embeddings)
    other = load_predictor(str(tmp_path / "m.safetensors"), LABELS, ModelOptions(device="cpu"))
    torch.testing.assert_close(other.logits(_clips()), _expected(model))


@pytest.mark.parametrize(
    ("model", "options", "message"),
    [
        ("ckpt", ModelOptions(backbone="ViT-B-32"), "--backbone chooses the zero-shot model"),
        ("ckpt", ModelOptions(precision="fp8"), "--precision 'fp8'"),
        ("ckpt", ModelOptions(device="tpu"), "--device 'tpu'"),
        (None, ModelOptions(backbone="ViT-B-16-quickgelo"), "Did you mean 'ViT-B-16-quickgelu'"),
        ("ckpt", ModelOptions(pretrained="w.pt"),
         "--pretrained cannot be combined with .*ckpt, whose backbone is local-dir:.*: its weights come with it"),
    ],
)
def test_option_mistakes_are_input_errors(tmp_path, tiny_backbone_name, model, options, message):
    spec = str(write_checkpoint(tmp_path / "ckpt", tiny_backbone_name)) if model else None
    with pytest.raises(InputError, match=message):
        load_predictor(spec, LABELS, options)


def test_labels_are_required_unless_the_model_carries_them(tmp_path, tiny_backbone_name):
    with pytest.raises(InputError, match="--labels is required"):
        load_predictor(str(write_checkpoint(tmp_path / "ckpt", tiny_backbone_name)), None, CPU)


def test_an_export_scores_its_own_labels_without_or_with_the_same_labels(tmp_path, monkeypatch):
    (tmp_path / "m.onnx").write_bytes(b"x")
    monkeypatch.setattr(predictor_module, "open_exported", lambda *args: _fake_export(1))
    for labels in (None, LABELS):
        assert load_predictor(str(tmp_path / "m.onnx"), labels, ModelOptions()).labels == LABELS.names


@pytest.mark.parametrize("labels", [None, LABELS])
def test_an_export_made_without_labels_says_so_with_or_without_labels(tmp_path, monkeypatch, labels):
    (tmp_path / "m.onnx").write_bytes(b"x")
    encoder = _fake_export(1, ("embedding",))
    encoder.metadata["labels"] = None  # as written by msta export without --labels
    monkeypatch.setattr(predictor_module, "open_exported", lambda *args: encoder)
    with pytest.raises(InputError, match="exported without --labels, so it holds no class embeddings; export again with --labels"):
        load_predictor(str(tmp_path / "m.onnx"), labels, ModelOptions())


def test_a_checkpoint_outside_its_run_predicts_with_its_recorded_frames(tmp_path, tiny_backbone_name):
    save_adapter(tiny_adapted_model(tiny_backbone_name), tmp_path / "export", ClipSampling(3))
    assert load_predictor(str(tmp_path / "export"), LABELS, ModelOptions(device="cpu")).sampling == ClipSampling(3)
    assert load_predictor(str(tmp_path / "export"), LABELS, ModelOptions(device="cpu", num_frames=5)).sampling == ClipSampling(5)
    save_adapter(tiny_adapted_model(tiny_backbone_name), tmp_path / "dense", ClipSampling(3, "dense", 2))
    frames = ModelOptions(device="cpu", num_frames=5)  # --frames changes the frame count, not how clips are drawn
    assert load_predictor(str(tmp_path / "dense"), LABELS, frames).sampling == ClipSampling(5, "dense", 2)


def _fake_export(batch_size: int | None, outputs=("embedding", "logits"), calls: list | None = None) -> ExportedEncoder:
    """An export that scores a clip by its mean per class, insists on its fixed batch, and
    appends each call's batch to `calls`."""
    calls = [] if calls is None else calls
    metadata = {
        "format": "msta-onnx/1", "labels": list(LABELS.names), "num_frames": FRAMES, "batch_size": batch_size,
        "preprocessing": {"size": 32, "mean": [0.5] * 3, "std": [0.2] * 3, "interpolation": "bicubic"},
        "outputs": list(outputs),
    }

    def run(frames: torch.Tensor) -> dict[str, torch.Tensor]:
        assert batch_size is None or frames.shape[0] == batch_size
        calls.append(frames.shape[0])
        return {"logits": frames.flatten(1).mean(dim=1, keepdim=True) * torch.tensor([1.0, 2.0, 3.0])}

    return ExportedEncoder("fake.onnx", metadata, run)


@pytest.mark.parametrize(("batch_size", "calls"), [(2, [2, 2, 2]), (None, [5])])
def test_exported_predictor_feeds_its_batch_and_drops_the_padding(batch_size, calls):
    clips = _clips(5)
    made = []
    logits = ExportedPredictor(_fake_export(batch_size, calls=made)).logits(clips)
    torch.testing.assert_close(logits, clips.flatten(1).mean(dim=1, keepdim=True) * torch.tensor([1.0, 2.0, 3.0]))
    assert made == calls


def test_an_exports_recorded_sampling_is_the_predictors_and_older_exports_mean_segments():
    older = _fake_export(1)  # metadata with num_frames only, as msta wrote before it recorded the sampling
    assert ExportedPredictor(older).sampling == SAMPLING
    dense = _fake_export(1)
    dense.metadata.update(sampling="dense", dense_stride=3)
    assert ExportedPredictor(dense).sampling == ClipSampling(FRAMES, "dense", 3)
    dense.metadata["dense_stride"] = "3"
    with pytest.raises(InputError, match="fake.onnx: metadata 'dense_stride' must be a positive integer"):
        ExportedPredictor(dense)


@pytest.mark.parametrize(
    ("labels", "options", "outputs", "message"),
    [
        (LabelSet(("other",), "x.txt"), ModelOptions(), ("embedding", "logits"), "scores its own 3 labels"),
        (None, ModelOptions(num_frames=16), ("embedding", "logits"), "takes 4 frames per clip"),
        (None, ModelOptions(precision="bf16"), ("embedding", "logits"),
         "^--precision cannot be combined with an exported --model, which fixes its backbone, weights and precision$"),
        (None, ModelOptions(), ("embedding",), "exported without --labels"),
    ],
)
def test_an_export_fixes_labels_frames_and_precision(tmp_path, monkeypatch, labels, options, outputs, message):
    (tmp_path / "m.onnx").write_bytes(b"x")
    monkeypatch.setattr(predictor_module, "open_exported", lambda *args: _fake_export(1, outputs))
    with pytest.raises(InputError, match=message):
        load_predictor(str(tmp_path / "m.onnx"), labels, options)
