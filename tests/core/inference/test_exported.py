from types import SimpleNamespace

import pytest
import torch

from msta_cli.core.errors import InputError
from msta_cli.core.inference import exported as exported_module
from msta_cli.core.inference.exported import open_exported

CPU_ONLY = SimpleNamespace(get_available_providers=lambda: ["CPUExecutionProvider"])


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("cuda", "^--device 'cuda': this onnxruntime offers only CPUExecutionProvider"),
        ("cuda:x", "^--device 'cuda:x' is not a device; use auto, cpu, cuda or cuda:N"),
        ("gpu", "^--device 'gpu' is not a device"),
    ],
)
def test_device_mistakes_are_reported_as_such_not_as_an_unloadable_file(tmp_path, monkeypatch, device, message):
    monkeypatch.setattr(exported_module, "require", lambda *args: CPU_ONLY)
    (tmp_path / "t.onnx").write_bytes(b"x")
    with pytest.raises(InputError, match=message):
        open_exported(tmp_path / "t.onnx", "onnx", device)


@pytest.mark.parametrize("zipped", [True, False])
def test_a_torch_save_pickle_is_named_as_such_not_as_a_corrupted_file(tmp_path, zipped):
    path = tmp_path / "weights.pt"
    torch.save({"a": torch.zeros(2)}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(InputError, match=r"weights.pt: a PyTorch pickle \(torch.save\), not a TorchScript export .*--model takes a run") as error:
        open_exported(path, "torchscript", "cpu")
    assert "corrupted" not in str(error.value)


def test_a_damaged_torchscript_file_is_still_reported_as_unloadable(tmp_path):
    (tmp_path / "m.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="m.pt: not a TorchScript file torch can load"):
        open_exported(tmp_path / "m.pt", "torchscript", "cpu")
