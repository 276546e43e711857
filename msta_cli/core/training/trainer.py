"""One training run: data, model, loss and optimizer from a Config, then the resumable loop.

Progress reaches the caller through `on_event` callbacks (the command renders them); the core
never prints.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from msta_cli.core.config import Config, EvalSet
from msta_cli.core.config_checks import check_input_size
from msta_cli.core.data.dataset import VideoClipDataset, make_loader
from msta_cli.core.data.sampling import ClipSampling
from msta_cli.core.data.sharding import ShardedSampler
from msta_cli.core.data.transforms import TrainTransform
from msta_cli.core.descriptions import descriptions_for, load_descriptions
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.evaluation.evaluator import Views, evaluate_set, set_views
from msta_cli.core.loss import MstaLoss
from msta_cli.core.model import MstaModel, create_model, parameter_summary
from msta_cli.core.training.distributed import Distributed, barrier, gather_objects
from msta_cli.core.training.optimization import build_optimizer, build_scheduler
from msta_cli.core.training.run_directory import METRICS, PROBLEMS, MetricsLog, ProblemsLog
from msta_cli.core.training.state import Progress, load_training_checkpoint, rng_state, save_training_checkpoint
from msta_cli.core.training.steps import LossWindow, any_process, clips_of_step, mean_over_clips_read
from msta_cli.core.training.training_data import TrainingData

Event = dict
VALIDATION = "val"


class Interrupted(MstaError):
    """SIGINT arrived; the run saved a checkpoint and can be resumed (the protocol, which knows
    the folder to resume, adds the command)."""


@dataclass
class RunOutcome:
    model: MstaModel
    progress: Progress
    # (path, reason) of every training video that failed on any rank, before a resume too.
    failures: list[tuple[str, str]] = field(default_factory=list)


class _Objective(nn.Module):
    """The whole differentiable step as one module call, so DDP sees text and video adapters."""

    def __init__(self, model: MstaModel, prompt_tokens: torch.Tensor, num_classes: int):
        super().__init__()
        self.model = model
        self.register_buffer("prompt_tokens", prompt_tokens, persistent=False)
        self.num_classes = num_classes

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        class_embeddings = self.model.embed_prompts(self.prompt_tokens, self.num_classes)
        return self.model(frames, class_embeddings), class_embeddings


def train_run(
    config: Config,
    run_dir: Path,
    data: TrainingData,
    world: Distributed,
    device: torch.device,
    resume: bool = False,
    on_event: Callable[[Event], None] = lambda event: None,
) -> RunOutcome:
    """Train adapters for `config.optim.epochs`, checkpointing into run_dir/checkpoints/."""
    _seed_everything(process_seed(config.seed, world.rank), config.run.deterministic)
    model = create_model(config, device)
    check_input_size(config, model.backbone.preprocessing.size)
    criterion = _criterion(config, model, data.class_names).to(device)
    objective = _Objective(model, model.prompt_tokens(data.class_names).to(device), len(data.class_names))
    if config.run.activation_checkpointing:
        model.backbone.set_grad_checkpointing()
    step_module: nn.Module = objective
    if world.enabled:
        step_module = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)
    if config.run.compile:
        step_module = torch.compile(step_module)

    micro_batch, accumulation = batching(config, world)
    dataset = VideoClipDataset(
        data.train, data.video_root, config.data.num_frames, mode="train", sampling=config.data.sampling,
        stride=config.data.dense_stride, backend=config.data.video_backend, seed=config.seed,
        max_short_side=config.data.resize_short_side,
    )
    sampler = ShardedSampler(len(dataset), world.rank, world.world_size, shuffle=True, seed=config.seed)
    loader = make_loader(
        dataset, micro_batch, config.data.workers, sampler, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(config.seed), persistent_workers=True,
    )
    micro_batches = math.ceil(len(sampler.shard()) / micro_batch)
    steps_per_epoch = math.ceil(micro_batches / accumulation)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=config.optim.precision == "fp16")
    preprocessing = model.backbone.preprocessing
    transform = TrainTransform(
        preprocessing.mean, preprocessing.std, config.data.input_size, config.data.crop_scales,
        config.data.flip_probability, config.data.color_jitter_probability,
        grayscale_p=config.data.grayscale_probability,
    )
    checkpoints = run_dir / "checkpoints"
    metrics = MetricsLog(run_dir / METRICS) if world.is_main else None
    progress = Progress()
    if resume:
        progress = load_training_checkpoint(checkpoints / "last", model, optimizer, scheduler, scaler, world.rank)
        if metrics:
            metrics.truncate_after(progress.global_step)
    problems = ProblemsLog(run_dir / PROBLEMS)
    seen: list[tuple[str, str, int]] = []  # this rank's (path, reason, epoch) failures since the last save_last
    interrupt = _InterruptFlag()
    validation = _prepare_validation(config, data, run_dir, world) if data.validation is not None else None

    def save(name: str) -> None:
        rng_states = gather_objects(rng_state(), world)
        if world.is_main:
            selection = config.eval.model_selection if name == "best" else "last"
            save_training_checkpoint(
                checkpoints / name, model, optimizer, scheduler, scaler, progress, rng_states, selection=selection,
                sampling=ClipSampling(config.data.num_frames, config.data.sampling, config.data.dense_stride),
            )
        barrier(world)

    def record_failures() -> None:
        """Gather every rank's new failures into problems.csv."""
        problems.add(failure for rank_seen in gather_objects(seen, world) for failure in rank_seen)
        seen.clear()
        if world.is_main:
            problems.write()

    def save_last() -> None:
        """Record failures, then save `last`: in that order, problems.csv holds every failure of
        the steps a resume from this checkpoint will skip."""
        record_failures()
        save("last")

    on_event({"event": "start", "steps_per_epoch": steps_per_epoch, "epochs": config.optim.epochs,
              "progress": progress, "accumulation": accumulation, "micro_batch": micro_batch,
              "parameters": parameter_summary(model), "world_size": world.world_size, "preprocessing": preprocessing})
    with interrupt, _problems_kept_on_crash(problems, seen, world):
        while progress.epoch < config.optim.epochs:
            dataset.set_epoch(progress.epoch)
            sampler.set_epoch(progress.epoch, start=progress.steps_in_epoch * accumulation * micro_batch)
            model.train()
            window_start, window = time.perf_counter(), LossWindow()
            pending = step_clips = 0
            epoch_batches = epoch_clips = 0  # this session's, so a resume at an epoch's end reads none
            batches = iter(loader)
            for position in range(progress.steps_in_epoch * accumulation, micro_batches):
                batch = next(batches)
                seen.extend((failure.path, failure.reason, progress.epoch) for failure in batch.failures)
                epoch_batches, epoch_clips = epoch_batches + 1, epoch_clips + len(batch)
                pending, step_clips = pending + 1, step_clips + len(batch)
                last_of_step = pending == accumulation or position == micro_batches - 1
                # Under DDP every rank must run backward, which all-reduces the gradients: a rank that
                # skipped it would pair its next all-reduce with another rank's current one, or leave
                # the others waiting. A rank whose videos all failed takes part with a black stand-in
                # clip and a zero loss.
                if len(batch) or world.enabled:
                    videos, sizes, labels = (batch.videos, batch.sizes, batch.labels) if len(batch) else _stand_in(config)
                    frames = transform(videos.to(device, non_blocking=True), sizes)  # sizes stay on the CPU: read with .tolist()
                    labels = labels.to(device, non_blocking=True)
                    with _no_sync_unless(step_module, last_of_step, world):
                        with torch.autocast(device.type, dtype=_amp_dtype(config), enabled=config.optim.precision != "fp32"):
                            logits, class_embeddings = step_module(frames)
                            loss, parts = criterion(logits.float(), labels, class_embeddings.float())
                        # weighted as if the step read all its clips; corrected below once it is known
                        scaler.scale(loss * (len(batch) / micro_batch) / accumulation).backward()
                if len(batch):
                    window.add(loss, parts, len(batch))  # read at logging: .item() waits for the GPU
                if not last_of_step:
                    continue
                read = clips_of_step(step_clips, world)
                pending = step_clips = 0
                window.clips += read
                if read:
                    mean_over_clips_read(optimizer, micro_batch * accumulation * world.world_size, read)
                    _optimizer_step(optimizer, scaler, config)
                else:  # no process read a clip: AdamW would still move the weights on zero gradients
                    optimizer.zero_grad(set_to_none=True)
                    optimizer.step()  # moves nothing without gradients; the scheduler warns if it steps first
                step_lr = optimizer.param_groups[0]["lr"]  # the rate this step ran at, before the scheduler moves on
                scheduler.step()
                progress.global_step += 1
                progress.steps_in_epoch += 1
                due = progress.global_step % config.run.log_every_steps == 0 or progress.steps_in_epoch == steps_per_epoch
                if due and window.clips:  # the same on every rank: logging all-reduces the losses
                    elapsed = time.perf_counter() - window_start
                    row = _step_row(progress, window.clips, window.means(device, world), step_lr, elapsed)
                    if metrics:
                        metrics.append(**row)
                        on_event({"event": "step", **row, "steps_per_epoch": steps_per_epoch, "memory": _gpu_memory(device)})
                    window_start = time.perf_counter()
                if config.run.checkpoint_every_steps and progress.global_step % config.run.checkpoint_every_steps == 0:
                    save_last()
                    on_event({"event": "checkpoint", "step": progress.global_step})
                if any_process(interrupt.raised, world):
                    save_last()
                    raise Interrupted(f"interrupted at step {progress.global_step}; saved")
            if metrics:
                metrics.close_epoch(progress.epoch, progress.global_step)
            progress.epoch += 1
            progress.steps_in_epoch = 0
            record_failures()
            # before validating: an epoch that read nothing has nothing to select
            _require_some_clips(gather_objects((epoch_batches, epoch_clips), world), progress.epoch - 1, problems)
            _select(config, validation, model, progress, world, device, metrics, on_event, save)
            save("last")  # this epoch's failures are recorded above
            on_event({"event": "epoch", "epoch": progress.epoch, "unreadable": len(problems.failures())})
    return RunOutcome(model, progress, problems.failures())


def _select(config, validation, model, progress, world, device, metrics, on_event, save) -> None:
    """best-on-val / best-on-test: score this epoch and keep the best adapters."""
    selection = config.eval.model_selection
    due = progress.epoch % config.eval.every_epochs == 0 or progress.epoch == config.optim.epochs
    if selection == "last" or not due:
        return
    if selection == "best-on-val":
        scores = evaluate_set(model, validation, validation.eval.sets[0], Views(1, 1), device, world)
    else:
        first = config.eval.sets[0]
        scores = evaluate_set(model, config, first, set_views(config, first), device, world)
    summary = scores.summary()
    if not summary["scored"]:  # every epoch would score NaN and the first would stay "best"
        path, reason, _ = scores.failures[0]
        raise MstaError(
            f"model selection ({selection}): no video of the {summary['split']} set could be scored "
            f"({summary['failed']} failed, e.g. {path}: {reason})"
        )
    epoch = progress.epoch - 1  # the epoch just trained, numbered from 0 as in metrics.csv's step and epoch rows
    if metrics:
        metrics.append(kind="eval", epoch=epoch, step=progress.global_step, split=summary["split"],
                       top1=summary["top1"], top5=summary["top5"], mean_class=summary["mean_class"])
    on_event({"event": "selection", "epoch": epoch, **summary})
    if progress.best_score is None or summary["top1"] > progress.best_score:
        progress.best_score, progress.best_epoch = summary["top1"], epoch
        save("best")


def _prepare_validation(config: Config, data: TrainingData, run_dir: Path, world: Distributed) -> Config:
    """Keep the held-out slice in the run directory and a config whose test set is that slice."""
    split_path, labels_path = (run_dir / "validation.csv").resolve(), (run_dir / "validation_labels.csv").resolve()
    if world.is_main:
        data.validation.to_csv(split_path, index=False)
        pd.DataFrame({"id": range(len(data.class_names)), "name": data.class_names}).to_csv(labels_path, index=False)
    barrier(world)
    validation_config = copy.deepcopy(config)
    validation_config.data.root = str(Path(config.data.root).resolve())
    validation_config.eval.sets = [EvalSet(name=VALIDATION, split=str(split_path), labels=str(labels_path))]
    return validation_config


def _criterion(config: Config, model: MstaModel, class_names: list[str]) -> MstaLoss:
    weight = config.loss.consistency_weight
    if not weight:
        return MstaLoss(0.0, label_smoothing=config.loss.label_smoothing)
    spatial, temporal = descriptions_for(load_descriptions(config.loss.descriptions), class_names)
    return MstaLoss(
        weight,
        model.description_embeddings(spatial),
        model.description_embeddings(temporal),
        label_smoothing=config.loss.label_smoothing,
    )


def batching(config: Config, world: Distributed) -> tuple[int, int]:
    """(micro-batch size, accumulation steps) per process; InputError if batch_size does not split so."""
    micro, total = config.optim.micro_batch_size, config.optim.batch_size
    per_step = micro * world.world_size
    if total % per_step:
        raise InputError(
            f"optim.batch_size {total} is not a multiple of micro_batch_size {micro} x {world.world_size} processes"
            + (f"; e.g. optim.micro_batch_size={total // world.world_size}" if total % world.world_size == 0 else "")
        )
    return micro, total // per_step


def _optimizer_step(optimizer, scaler, config: Config) -> None:
    if config.optim.grad_clip_norm:
        scaler.unscale_(optimizer)
        clip_gradients(optimizer, config.optim.grad_clip_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> torch.Tensor:
    """Clip over everything the optimizer updates (the backbone too under adapter.finetune: full),
    not only the adapters; returns the norm before clipping."""
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm)


def _step_row(progress: Progress, clips: int, losses: dict[str, float], lr: float, elapsed: float) -> dict:
    """A metrics.csv row for the steps since the last one: every process's clips and losses, and
    the learning rate the row's step ran at."""
    return {
        "kind": "step",
        "epoch": progress.epoch,
        "step": progress.global_step,
        **losses,
        "lr": lr,
        "clips_per_s": round(clips / max(elapsed, 1e-9), 2),
    }


def _require_some_clips(counts: list[tuple[int, int]], epoch: int, problems: ProblemsLog) -> None:
    """Stop a run whose epoch read no video at all (every rank's (batches, clips) in `counts`):
    its training would go on changing nothing, and its results would look like a model's."""
    if sum(batches for batches, _ in counts) and not sum(clips for _, clips in counts):
        failures = problems.failures()
        example = f", e.g. {failures[0][0]}: {failures[0][1]}" if failures else ""
        raise MstaError(
            f"epoch {epoch}: no training video could be read ({len(failures)} failed{example}); "
            f"every failure is in {problems.path}"
        )


def _stand_in(config: Config) -> tuple[torch.Tensor, None, torch.Tensor]:
    """(videos, sizes, labels) of one black clip, for a DDP rank whose micro-batch has no video."""
    size = config.data.input_size
    return torch.zeros(1, config.data.num_frames, size, size, 3, dtype=torch.uint8), None, torch.zeros(1, dtype=torch.long)


def _no_sync_unless(module: nn.Module, synchronise: bool, world: Distributed):
    """Skip DDP's gradient all-reduce on accumulation micro-steps."""
    if world.enabled and not synchronise and isinstance(module, DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()


def _amp_dtype(config: Config) -> torch.dtype:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.optim.precision, torch.float32)


def _gpu_memory(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def process_seed(seed: int, rank: int) -> int:
    """The main process keeps the recipe's seed (a single-process run's streams stay as they were);
    the others get a hash of (seed, rank), not seed + rank, which is another seed's main process."""
    if rank == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"msta seed {seed} rank {rank}".encode()).digest()[:8], "little")


def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


@contextlib.contextmanager
def _problems_kept_on_crash(problems: ProblemsLog, seen: list[tuple[str, str, int]], world: Distributed) -> Iterator[None]:
    """A crash or a second Ctrl-C still writes the main process's failures since the last checkpoint.

    No gather here: the other ranks may be gone, and their unsaved failures with them.
    """
    try:
        yield
    except BaseException:
        if world.is_main:
            problems.add(seen)
            problems.write()
        raise


class _InterruptFlag:
    """Turns the first SIGINT into a flag the processes agree on at each step (all save, then exit)."""

    def __init__(self) -> None:
        self.raised = False

    def __enter__(self) -> "_InterruptFlag":
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.raised:  # a second Ctrl-C means stop now
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc_info) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
