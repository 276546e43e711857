"""Which samples each process reads, epoch by epoch, resumable from the middle of an epoch.

torch's DistributedSampler cannot start part-way into an epoch, which exact mid-epoch resume
needs, and it does not tell the evaluator which samples are padding; this sampler does both.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class ShardedSampler(Sampler[int | None]):
    """Seeded per-epoch order, padded to a multiple of the world size, sharded by rank.

    Padding slots are None (fewer samples than ranks too), so every rank gets the same number
    of slots and runs the same number of steps (DDP's collectives hang otherwise), while no
    sample is read twice: the dataset returns nothing for a slot, and a repeated sample would
    weigh double in training and make the number of processes change the result.
    """

    def __init__(self, size: int, rank: int = 0, world_size: int = 1, shuffle: bool = True, seed: int = 0):
        self.size = size
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select `epoch`'s order and skip this rank's first `start` samples (resume)."""
        self.epoch = epoch
        self.start = start

    def shard(self) -> list[int | None]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order: list[int | None] = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        per_rank = -(-self.size // self.world_size)
        padded = order + [None] * (per_rank * self.world_size - self.size)
        return padded[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int | None]:
        return iter(self.shard()[self.start :])

    def __len__(self) -> int:
        return len(self.shard()) - self.start
