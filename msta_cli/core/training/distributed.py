"""torchrun integration: one process needs no process group; several get NCCL (GPU) or gloo (CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from msta_cli.core.errors import InputError

_host_group: dist.ProcessGroup | None = None  # gloo, for host-side sums when the default group is NCCL


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group torchrun describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(requested: str, option: str = "run.device") -> torch.device:
    """`auto` is this process's GPU (LOCAL_RANK under torchrun) when there is one, else the CPU;
    a GPU asked for must exist here (before a run directory or a model is made)."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise InputError(f"{option} {requested!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not available:
            raise InputError(f"{option} {requested}: CUDA is not available on this machine; use {option} cpu")
        if (device.index or 0) >= available:
            raise InputError(f"{option} {requested}: this machine has {available} CUDA device(s)")
    return device


def gather_objects(value: Any, world: Distributed) -> list[Any]:
    """Every rank's `value`, in rank order (just `[value]` in a single process)."""
    if not world.enabled:
        return [value]
    gathered: list[Any] = [None] * world.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_object(value: Any, world: Distributed) -> Any:
    """Rank 0's `value` on every rank."""
    if not world.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def all_reduce_sum(values: torch.Tensor, world: Distributed) -> torch.Tensor:
    """`values` summed element-wise over ranks, in place (unchanged in a single process)."""
    if world.enabled:
        dist.all_reduce(values)
    return values


def host_sum(values: list[int], world: Distributed) -> list[int]:
    """Integers known on the host, summed over ranks through gloo: through NCCL they would have
    to go to the GPU, and reading the sum back would wait for every kernel queued there."""
    if not world.enabled:
        return values
    global _host_group
    if _host_group is None and dist.get_backend() != "gloo":
        _host_group = dist.new_group(backend="gloo")
    summed = torch.tensor(values, dtype=torch.int64)
    dist.all_reduce(summed, group=_host_group)
    return summed.tolist()


def barrier(world: Distributed) -> None:
    if world.enabled:
        dist.barrier()


def shutdown(world: Distributed) -> None:
    global _host_group
    if world.enabled and dist.is_initialized():
        dist.destroy_process_group()
        _host_group = None
