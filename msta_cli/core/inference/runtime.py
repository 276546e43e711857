"""Where and in which precision a model runs, and the optional packages some paths need."""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType

import torch

from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.training import distributed

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(spec: str) -> torch.device:
    """`auto` (as training resolves it), `cpu`, `cuda` or `cuda:N`, checked before any model is built."""
    device = distributed.resolve_device(spec, "--device")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")
    return device


def check_precision(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for fp16/bf16 (weights stay fp32, as trained); nothing for fp32."""
    dtype = check_precision(precision)
    if dtype is torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or say which package and extra provide it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MstaError(
            f"{purpose} needs the Python package '{package}', which is not installed: in msta's "
            f"folder, pip install -e '.[{extra}]' installs it with the rest of the '{extra}' extra"
        ) from None
