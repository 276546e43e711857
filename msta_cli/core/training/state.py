"""Resumable training checkpoints: the adapter pair plus everything needed to continue exactly.

`training_state.pt` holds optimizer, scheduler and scaler state, the position in the data
order, and every RNG the loop draws from. It contains only tensors and plain Python values,
so it loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import pickle
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from msta_cli.core.checkpoint import CONFIG_FILE, load_adapter, save_adapter
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.errors import InputError
from msta_cli.core.files import atomic_path
from msta_cli.core.model import MstaModel

STATE_FILE = "training_state.pt"


@dataclass
class Progress:
    """Where training stands: completed optimizer steps, and the position inside the epoch."""

    epoch: int = 0
    steps_in_epoch: int = 0
    global_step: int = 0
    best_score: float | None = None
    best_epoch: int | None = None


def save_training_checkpoint(
    directory: Path,
    model: MstaModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    progress: Progress,
    rng_states: list[dict],
    selection: str = "last",
    sampling: ClipSampling | None = None,
) -> None:
    """Write into a fresh temporary folder, then swap it in, so `directory` is always whole.

    `rng_states` holds every rank's `rng_state()`, so each process resumes its own stream.
    `selection` says how the adapters were chosen; a best checkpoint records its epoch too.
    `sampling` (the run's frames per clip and test clips) goes with the adapters, so a checkpoint
    copied out of its run is still predicted and exported as it was evaluated.
    """
    staging = directory.with_name(f".{directory.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    save_adapter(model, staging, sampling, selection=selection, epoch=progress.best_epoch if selection != "last" else None)
    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "progress": vars(progress).copy(),
        "rng": rng_states,
    }
    with atomic_path(staging / STATE_FILE) as temporary:
        torch.save(state, temporary)
    retired = _retired(directory)
    shutil.rmtree(retired, ignore_errors=True)
    if directory.exists():
        directory.rename(retired)
    staging.rename(directory)
    shutil.rmtree(retired, ignore_errors=True)


def load_training_checkpoint(
    directory: Path,
    model: MstaModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    rank: int = 0,
) -> Progress:
    """Restore everything `save_training_checkpoint` wrote; this process continues rank `rank`'s
    random streams, so the checkpoint must come from a run of at least that many processes."""
    if not (directory / CONFIG_FILE).is_file():
        raise InputError(f"{directory}: no checkpoint to resume from")
    load_adapter(model, directory)
    try:
        state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise InputError(
            f"{directory / STATE_FILE}: cannot read the training state ({str(error).strip().splitlines()[0][:200]}); "
            f"this run cannot continue from {directory}. Delete that folder to train the run again from step 0"
        ) from None
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    saved_by = len(state["rng"])
    if rank >= saved_by:  # another rank's stream would repeat its augmentations
        raise InputError(f"{directory}: saved by a run of {saved_by} process(es); resume it with as many")
    rng = state["rng"][rank]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])
    return Progress(**state["progress"])


def restore_checkpoint(directory: Path) -> bool:
    """Whether `directory` holds a checkpoint to resume from, putting back one that a kill between
    the two renames of a save left retired. Renames: call it on the main process only."""
    if (directory / CONFIG_FILE).is_file():
        return True
    retired = _retired(directory)
    if not (retired / CONFIG_FILE).is_file():
        return False
    shutil.rmtree(directory, ignore_errors=True)
    retired.rename(directory)
    return True


def _retired(directory: Path) -> Path:
    """Where a save moves the previous checkpoint until the new one is in place."""
    return directory.with_name(f".{directory.name}.old")


def rng_state() -> dict:
    """Every random stream the training loop draws from, in this process."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
    }
