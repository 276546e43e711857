import json
import os
import shutil
import stat

import numpy as np
import open_clip.factory
import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from msta_cli.cli import app
from msta_cli.core.inference.exported import TORCHSCRIPT_METADATA
from tests.core.inference.helpers import FRAMES, write_checkpoint, write_run
from tests.helpers.models import write_tiny_clip
from tests.helpers.videos import write_video

runner = CliRunner()
LABELS = ["brush hair", "cartwheel", "climb"]
STRIDE = 4  # the run's dense sampling: 4 frames 4 apart, which every export must keep


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_backbone_name):
    """A run (4 frames, dense sampling), a labels file and three videos long enough for a dense
    clip, on which dense and segment sampling pick different frames."""
    root = tmp_path_factory.mktemp("export")
    write_run(root / "run", tiny_backbone_name, dense_stride=STRIDE)
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (root / "other.txt").write_text("dive\n")
    for index in range(3):
        write_video(root / "videos" / f"{index}.mp4", num_frames=24 + 12 * index)
    return root


def _predict(setup, *model: str) -> dict:
    result = runner.invoke(app, ["predict", str(setup / "videos"), *model, "--format", "json", "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return {p["path"]: p["top"] for p in json.loads(result.stdout)["predictions"]}


def _assert_same_predictions(actual: dict, expected: dict, tolerance: float = 1e-5) -> None:
    assert actual.keys() == expected.keys()
    for path, top in expected.items():
        assert [t["label"] for t in actual[path]] == [t["label"] for t in top]
        assert [t["probability"] for t in actual[path]] == pytest.approx([t["probability"] for t in top], abs=tolerance)


def _export(setup, export_format: str, out: str, *options: str):
    result = runner.invoke(app, ["export", str(setup / "run"), "--format", export_format, "--out", str(setup / out), *options])
    assert result.exit_code == 0, result.output
    assert "verified against PyTorch" in result.stdout
    return result


@pytest.fixture(scope="module")
def pytorch_predictions(setup):
    return _predict(setup, "--model", str(setup / "run"), "--labels", str(setup / "labels.txt"))


def test_the_run_predicts_with_dense_clips_not_segments(setup, pytorch_predictions):
    """So that an export that lost the run's sampling fails the tests below."""
    alone = shutil.copytree(setup / "run" / "checkpoints" / "last", setup / "outside-run")  # records no sampling
    segments = _predict(setup, "--model", str(alone), "--labels", str(setup / "labels.txt"), "--frames", str(FRAMES))
    with pytest.raises(AssertionError):
        _assert_same_predictions(segments, pytorch_predictions)


def _assert_dense(metadata: dict) -> None:
    assert (metadata["num_frames"], metadata["sampling"], metadata["dense_stride"]) == (FRAMES, "dense", STRIDE)


@pytest.fixture(scope="module")
def onnx_model(setup):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    return _export_encoder(setup, "onnx", "model.onnx")


@pytest.fixture(scope="module")
def fixed_onnx_model(setup):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    return _export_encoder(setup, "onnx", "fixed.onnx", "--batch-size", "2")


@pytest.fixture(scope="module")
def torchscript_model(setup):
    return _export_encoder(setup, "torchscript", "model.pt", "--batch-size", "2")


def _export_encoder(setup, export_format: str, out: str, *options: str):
    result = _export(setup, export_format, out, "--labels", str(setup / "labels.txt"), *options)
    assert all(name in result.stdout for name in ("embedding", "logits", "max |difference|"))
    return setup / out


@pytest.mark.parametrize("exported", ["onnx_model", "fixed_onnx_model", "torchscript_model"])
def test_encoder_exports_reproduce_pytorch_and_predict_on_their_own(request, setup, pytorch_predictions, exported):
    path = request.getfixturevalue(exported)
    _assert_same_predictions(_predict(setup, "--model", str(path)), pytorch_predictions)
    other = runner.invoke(app, ["predict", str(setup / "videos"), "--model", str(path), "--labels", str(setup / "other.txt")])
    assert other.exit_code == 2 and "fixed at export" in other.stderr


def _session(path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_onnx_metadata_tells_a_plain_onnxruntime_user_how_to_feed_it(onnx_model):
    session = _session(onnx_model)
    metadata = json.loads(session.get_modelmeta().custom_metadata_map["msta"])
    assert metadata["input"] == {"name": "frames", "shape": ["batch", FRAMES, 3, 32, 32]}
    _assert_dense(metadata)
    assert metadata["batch_size"] is None
    assert metadata["labels"] == LABELS and metadata["preprocessing"]["mean"] == [0.5, 0.4, 0.3]
    assert [output.name for output in session.get_outputs()] == ["embedding", "logits"]


def test_onnx_export_takes_any_batch_unless_one_is_fixed(onnx_model, fixed_onnx_model):
    clips = np.random.default_rng(0).standard_normal((5, FRAMES, 3, 32, 32)).astype(np.float32)
    session = _session(onnx_model)
    together = session.run(["logits"], {"frames": clips})[0]
    one_by_one = np.concatenate([session.run(["logits"], {"frames": clip[None]})[0] for clip in clips])
    assert together.shape == (5, len(LABELS))
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)
    fixed = _session(fixed_onnx_model)
    assert fixed.get_inputs()[0].shape == [2, FRAMES, 3, 32, 32]
    np.testing.assert_allclose(fixed.run(["logits"], {"frames": clips[:2]})[0], together[:2], atol=1e-4)


def test_adapter_export_is_the_pair_and_predicts_the_same(setup, pytorch_predictions):
    _export(setup, "adapter", "adapter")
    assert sorted(p.name for p in (setup / "adapter").iterdir()) == ["adapter.safetensors", "adapter_config.json"]
    predictions = _predict(setup, "--model", str(setup / "adapter"), "--labels", str(setup / "labels.txt"), "--frames", str(FRAMES))
    _assert_same_predictions(predictions, pytorch_predictions, tolerance=0.0)


def test_merged_export_predicts_with_no_network_and_no_open_clip_weights(setup, tmp_path, monkeypatch):
    backbone = write_tiny_clip(tmp_path / "backbone")  # the same seeded weights, in a folder we delete
    checkpoint = write_checkpoint(tmp_path / "ckpt", backbone)
    expected = _predict(setup, "--model", str(checkpoint), "--labels", str(setup / "labels.txt"), "--frames", str(FRAMES))
    merged = tmp_path / "merged.safetensors"
    result = runner.invoke(app, ["export", str(checkpoint), "--format", "merged", "--out", str(merged), "--labels", str(setup / "labels.txt"), "--frames", str(FRAMES)])
    assert result.exit_code == 0, result.output
    shutil.rmtree(tmp_path / "backbone")

    def no_download(*args, **kwargs):
        raise AssertionError("merged predict tried to download")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", no_download)
    monkeypatch.setattr(open_clip.factory, "download_pretrained_from_hf", no_download)
    _assert_same_predictions(_predict(setup, "--model", str(merged)), expected, tolerance=0.0)


def test_export_mistakes_are_exit_code_2(setup):
    cases = [
        (["--format", "onnx", "--out", str(setup / "x.onnx"), "--labels", str(setup / "missing.txt")], "no such file"),
        (["--format", "merged", "--out", str(setup / "x.bin")], "must end in .safetensors"),
        (["--format", "merged", "--out", str(setup / "x.safetensors"), "--pretrained", "w.pt"],
         f"--pretrained cannot be combined with {setup / 'run' / 'checkpoints' / 'last'}, whose backbone is local-dir:"),
    ]
    for options, message in cases:
        result = runner.invoke(app, ["export", str(setup / "run"), *options])
        assert result.exit_code == 2 and message in " ".join(result.stderr.split()), result.output
    assert not (setup / "x.safetensors").exists()
    result = runner.invoke(app, ["export", str(setup / "videos"), "--format", "adapter", "--out", str(setup / "y")])
    assert result.exit_code == 2 and "neither a training run" in result.stderr


def test_adapter_export_keeps_the_runs_frames_and_sampling_for_predict_and_a_later_export(setup, pytorch_predictions):
    _export(setup, "adapter", "adapter-frames")
    _assert_dense(json.loads((setup / "adapter-frames" / "adapter_config.json").read_text()))
    predictions = _predict(setup, "--model", str(setup / "adapter-frames"), "--labels", str(setup / "labels.txt"))
    _assert_same_predictions(predictions, pytorch_predictions, tolerance=0.0)
    merged = setup / "from-adapter.safetensors"
    result = runner.invoke(app, ["export", str(setup / "adapter-frames"), "--format", "merged", "--out", str(merged)])
    assert result.exit_code == 0, result.output
    with safe_open(str(merged), framework="pt") as handle:
        _assert_dense(json.loads(handle.metadata()["msta"]))
    _assert_same_predictions(_predict(setup, "--model", str(merged), "--labels", str(setup / "labels.txt")), pytorch_predictions)


def test_merged_export_of_the_run_predicts_as_the_run(setup, pytorch_predictions):
    _export(setup, "merged", "run.safetensors", "--labels", str(setup / "labels.txt"))
    _assert_same_predictions(_predict(setup, "--model", str(setup / "run.safetensors")), pytorch_predictions)


def test_torchscript_export_without_labels_is_refused_by_predict_with_or_without_labels(setup):
    _export(setup, "torchscript", "no-labels.pt")
    for labels in ([], ["--labels", str(setup / "labels.txt")]):
        result = runner.invoke(app, ["predict", str(setup / "videos"), "--model", str(setup / "no-labels.pt"), *labels, "--device", "cpu"])
        assert result.exit_code == 2 and "exported without --labels" in result.stderr, result.output


@pytest.mark.parametrize(("export_format", "out", "written"), [("adapter", "shared-adapter", "shared-adapter/adapter.safetensors"), ("merged", "shared.safetensors", "shared.safetensors")])
def test_exports_are_readable_by_group_and_others_under_umask_022(setup, export_format, out, written):
    previous = os.umask(0o022)
    try:
        _export(setup, export_format, out)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((setup / written).stat().st_mode) == 0o644


def test_a_torchscript_export_holds_no_tensor_made_on_the_export_device(torchscript_model):
    """Traced on the CPU, a tensor made in forward would be a CPU constant and fail on a GPU
    (`torch.jit.load(map_location="cuda")`); the module's buffers move with it instead."""
    graph = str(torch.jit.load(str(torchscript_model)).inlined_graph)
    assert 'value="cpu"' not in graph and "aten::arange" not in graph


class _Failing(torch.nn.Module):
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[0] > 0:
            raise RuntimeError("Expected all tensors to be on the same device")
        return frames


def test_a_torchscript_module_failing_at_run_time_is_a_failure_naming_the_file(tmp_path, setup, torchscript_model):
    extra = {TORCHSCRIPT_METADATA: ""}
    torch.jit.load(str(torchscript_model), _extra_files=extra)
    broken = tmp_path / "broken.pt"
    torch.jit.save(torch.jit.script(_Failing()), str(broken), _extra_files=extra)
    result = runner.invoke(app, ["predict", str(setup / "videos"), "--model", str(broken)])
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert f"{broken}: the TorchScript module failed on cpu" in message and "same device" in message and "Traceback" not in result.output
