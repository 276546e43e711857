import pytest
import torch

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.inference.runtime import autocast, require, resolve_device


def test_devices_are_checked_before_a_model_is_built():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available on this machine; use --device cpu"):
            resolve_device("cuda:1")


def test_autocast_only_below_fp32():
    with autocast(torch.device("cpu"), "bf16"):
        assert torch.is_autocast_enabled("cpu")
    with autocast(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled("cpu")


def test_a_missing_optional_package_names_the_extra_to_install():
    with pytest.raises(MstaError, match=r"ONNX export needs the Python package 'onnx_not_here', .*pip install -e '\.\[onnx\]'"):
        require("onnx_not_here.sub", "onnx", "ONNX export")
