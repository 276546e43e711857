from types import SimpleNamespace

import pytest

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
