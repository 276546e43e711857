import pytest
import torch

from msta_cli.core.config import AdapterConfig, Config
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.inference import export as export_module
from msta_cli.core.inference.classes import embed_classes
from msta_cli.core.inference.export import export_checkpoint, export_model
from msta_cli.core.inference.labels import LabelSet
from msta_cli.core.inference.merged import load_merged, read_merged_metadata
from msta_cli.core.model import create_model
from msta_cli.core.synthetic.vocabulary import CompactTokenizer
from tests.core.inference.helpers import SAMPLING, tiny_adapted_model, write_checkpoint


def test_merged_round_trip_carries_everything_to_rebuild_the_model(tmp_path, tiny_backbone_name):
    model = tiny_adapted_model(tiny_backbone_name)
    report = export_model(model, "merged", tmp_path / "m.safetensors", SAMPLING)
    assert {check.output for check in report.checks} == {"embedding", "class_embeddings"}
    assert all(check.difference == 0.0 for check in report.checks)
    metadata = read_merged_metadata(tmp_path / "m.safetensors")
    assert metadata["model_cfg"]["vision_cfg"]["width"] == 64 and metadata["labels"] is None
    restored = load_merged(tmp_path / "m.safetensors")
    assert restored.sampling == SAMPLING and restored.classes is None
    assert restored.model.templates == model.templates
    assert restored.model.backbone.preprocessing == model.backbone.preprocessing


def test_msta_tiny_merges_with_its_compact_vocabulary(tmp_path):
    """Its text tower has a table of a few hundred tokens: open_clip's own tokenizer would not fit it."""
    config = Config()
    config.model.backbone = "msta-tiny"
    config.adapter = AdapterConfig(bottleneck=32, blocks=[1, 2])
    torch.manual_seed(0)
    model = create_model(config)
    report = export_model(model, "merged", tmp_path / "tiny.safetensors", SAMPLING, embed_classes(model, ["star moving left"]))
    assert {check.output: check.difference for check in report.checks} == {"embedding": 0.0, "class_embeddings": 0.0, "logits": 0.0}
    restored = load_merged(tmp_path / "tiny.safetensors")
    assert isinstance(restored.model.backbone.tokenize, CompactTokenizer)
    assert restored.model.backbone.name == "msta-tiny" and restored.classes.names == ("star moving left",)


def test_a_mismatch_fails_the_export_and_leaves_nothing(tmp_path, tiny_backbone_name, monkeypatch):
    def perturbed(path):
        merged = load_merged(path)
        with torch.no_grad():
            merged.model.backbone.clip.visual.proj.neg_()
        return merged

    monkeypatch.setattr(export_module, "load_merged", perturbed)
    with pytest.raises(MstaError, match=r"verification failed, nothing was written: .*embedding differs by"):
        export_model(tiny_adapted_model(tiny_backbone_name), "merged", tmp_path / "m.safetensors", SAMPLING)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MstaError, match="verification failed"):  # nor the folders it made for the file
        export_model(tiny_adapted_model(tiny_backbone_name), "merged", tmp_path / "new" / "sub" / "m.safetensors", SAMPLING)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("format", "out", "options", "message"),
    [
        ("tflite", "m.tflite", {}, "--format 'tflite': choose one of adapter, merged, onnx, torchscript"),
        ("onnx", "m.safetensors", {}, "must end in .onnx"),
        ("merged", "m.onnx", {}, "must end in .safetensors"),
        ("adapter", "file.txt", {}, "is a file"),
        ("adapter", "out", {"labels": LabelSet(("a",), "x")}, "an adapter export holds adapter weights only"),
        ("merged", "m.safetensors", {"batch_size": 4}, "a merged export takes any batch"),
        ("merged", "m.safetensors", {"pretrained": "w.pt"}, "--pretrained cannot be combined with .*ckpt, whose backbone is local-dir:"),
    ],
)
def test_option_mistakes_are_input_errors(tmp_path, tiny_backbone_name, format, out, options, message):
    checkpoint = write_checkpoint(tmp_path / "ckpt", tiny_backbone_name)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match=message):
        export_checkpoint(checkpoint, format, tmp_path / out, **options)
