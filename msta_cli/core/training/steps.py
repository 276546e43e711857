"""What the processes of a run must agree on at each optimizer step.

Under DDP each process reads its own share of a step's videos, and any of them may fail: the
step's gradient, whether to take the step at all, whether to stop, and the logged loss must all
come from every process's counts, or the processes drift apart (or hang in a collective).
"""

from __future__ import annotations

import torch

from msta_cli.core.training.distributed import Distributed, all_reduce_sum, host_sum


def clips_of_step(clips: int, world: Distributed) -> int:
    """The clips all processes read in this step (one small all-reduce)."""
    return host_sum([clips], world)[0]


def any_process(flag: bool, world: Distributed) -> bool:
    """Whether `flag` is set in some process: a SIGINT that reached one process stops them all."""
    return host_sum([int(flag)], world)[0] > 0


def mean_over_clips_read(optimizer: torch.optim.Optimizer, nominal_clips: int, clips: int) -> None:
    """Make the step's gradient the mean over the `clips` read by all processes, not over the
    `nominal_clips` (micro-batch x accumulation x processes) that backward weighted each
    micro-batch's mean loss by, before it knew them: an epoch's short last step and a step
    with failed videos then weigh each clip like a full step does.
    """
    if clips == nominal_clips:
        return
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            if parameter.grad is not None:
                parameter.grad.mul_(nominal_clips / clips)


class LossWindow:
    """Clip-weighted loss sums since the last logged step, kept on the device until logged."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None  # (loss, ce, consistency) x clips, this process's
        self.clips = 0  # all processes'

    def add(self, loss: torch.Tensor, parts: dict[str, torch.Tensor], clips: int) -> None:
        weighted = torch.stack([loss.detach(), parts["ce"], parts["consistency"]]).float() * clips
        self.sums = weighted if self.sums is None else self.sums + weighted

    def means(self, device: torch.device, world: Distributed) -> dict[str, float]:
        """The window's loss, ce and consistency over every clip any process read; a collective:
        call it on every rank at the same steps."""
        sums = self.sums if self.sums is not None else torch.zeros(3, device=device)
        loss, ce, consistency = (all_reduce_sum(sums, world) / self.clips).tolist()
        self.sums, self.clips = None, 0
        return {"loss": round(loss, 6), "ce": round(ce, 6), "consistency": round(consistency, 6)}
