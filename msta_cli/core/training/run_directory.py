"""The run directory: what a run leaves behind, written so a crash never leaves a broken file."""

from __future__ import annotations

import csv
import json
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterable

import open_clip
import pandas as pd
import torch

import msta_cli
from msta_cli.core.config import Config, config_to_dict, dump_config, load_config
from msta_cli.core.errors import InputError
from msta_cli.core.files import atomic_path, write_text_atomic
from msta_cli.core.output_paths import check_output

CONFIG = "config.yaml"
ENVIRONMENT = "env.json"
METRICS = "metrics.csv"
PROBLEMS = "problems.csv"
PROBLEM_FIELDS = ["path", "reason", "epoch"]
CHECKPOINTS = "checkpoints"
# Keys an override may change on --resume: more epochs, and how the run executes and is evaluated.
# Any other change (model, adapter, data, loss, optimizer, seed, protocol, model selection) would
# make the checkpoint the product of a different recipe than config.yaml records.
RESUMABLE_KEYS = (
    "optim.epochs", "data.workers", "eval.views", "eval.sets", "eval.batch_size", "eval.zero_shot_baseline",
    "run.device", "run.checkpoint_every_steps", "run.log_every_steps", "run.compile", "run.activation_checkpointing",
)
METRIC_FIELDS = ["kind", "epoch", "step", "loss", "ce", "consistency", "lr", "clips_per_s", "split", "top1", "top5", "mean_class"]


def new_run_directory(config: Config, base: str | Path = "runs") -> Path:
    """`output_dir` if given, else runs/<name>-<timestamp>; never an existing run."""
    path = Path(config.output_dir) if config.output_dir else Path(base) / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_output(path, "output_dir", folder=True)  # a file, or a place nothing can be written: before any work
    if path.exists() and any(path.iterdir()):
        if (path / CONFIG).is_file():
            raise InputError(f"{path}: a run already exists here; resume it with --resume {path} or choose another output_dir")
        raise InputError(f"{path}: not empty and not a run; choose an empty or new output_dir")
    return path


def start_run_directory(path: Path, config: Config, world_size: int, device: torch.device) -> None:
    """Record the config and environment of a run that trains from step 0, dropping what an attempt
    killed before its first checkpoint logged (metrics.csv is appended to, so it would hold the
    same steps twice)."""
    path.mkdir(parents=True, exist_ok=True)
    for logged in (path / METRICS, path / PROBLEMS):
        logged.unlink(missing_ok=True)
    shutil.rmtree(path / CHECKPOINTS, ignore_errors=True)
    record_config(path, config)
    write_text_atomic(path / ENVIRONMENT, json.dumps(environment(world_size, device), indent=2) + "\n")


def record_config(path: Path, config: Config) -> None:
    """config.yaml: the config the run trains with (a resume's overrides included)."""
    write_text_atomic(path / CONFIG, dump_config(config))


def resume_config(path: Path, overrides: list[str]) -> Config:
    """The run's recorded config with a resume's overrides, refusing changes to anything but
    RESUMABLE_KEYS: the rest shaped the checkpoint the run continues from."""
    if not (path / CONFIG).is_file():
        raise InputError(f"--resume {path}: not a run directory (no {CONFIG})")
    if (path.parent / CONFIG).is_file() and (path / CHECKPOINTS).is_dir():
        # one run of a protocol: resumed on its own it would start a protocol of its own, from step 0
        raise InputError(
            f"--resume {path}: this is run {path.name} of the protocol run {path.parent}; resume that: "
            f"msta train --resume {path.parent}"
        )
    config = load_config(path / CONFIG, overrides)
    check_resumable(path, config)
    return config


def check_resumable(path: Path, config: Config) -> None:
    """Refuse to continue the run in `path` with `config` where its CONFIG (what its checkpoints
    were trained with) differs in more than RESUMABLE_KEYS, or has more epochs than `config`.
    A protocol checks each of its runs too: a hand-edited top-level CONFIG passes the first check."""
    recorded = load_config(path / CONFIG)
    if config.optim.epochs < recorded.optim.epochs:
        raise InputError(
            f"--resume {path}: optim.epochs can only grow on a resume (the run is set to {recorded.optim.epochs}, "
            f"given {config.optim.epochs}): what it trained past that would stay in its weights. To score it as it "
            f"is now: msta evaluate {path}"
        )
    fixed = [key for key in _changed_keys(config_to_dict(recorded), config_to_dict(config)) if key not in RESUMABLE_KEYS]
    if fixed:
        raise InputError(
            f"--resume {path}: {', '.join(fixed)} cannot change in a run that has started (its checkpoints were "
            f"trained with {CONFIG}'s values); start a new run instead. A resume may change: {', '.join(RESUMABLE_KEYS)}"
        )


def _changed_keys(recorded: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (lists compare whole)."""
    changed = []
    for key, value in current.items():
        if isinstance(value, dict):
            changed += _changed_keys(recorded[key], value, f"{prefix}{key}.")
        elif recorded[key] != value:
            changed.append(f"{prefix}{key}")
    return changed


def check_world_size(path: Path, world_size: int) -> None:
    """Refuse to resume on another number of processes: each process continues the random
    streams and the data shard of its rank, so only the same world size resumes exactly."""
    recorded = json.loads((path / ENVIRONMENT).read_text()).get("world_size") if (path / ENVIRONMENT).is_file() else None
    if recorded is not None and recorded != world_size:
        raise InputError(
            f"--resume {path}: this run was made with {recorded} process(es) and must resume with {recorded} "
            f"({f'--nproc {recorded}' if recorded > 1 else 'without --nproc'}), not {world_size}"
        )


def environment(world_size: int, device: torch.device) -> dict:
    """Enough to reproduce or explain a number: versions, revision, hardware."""
    return {
        "msta": msta_cli.__version__,
        "git_revision": _git_revision(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "world_size": world_size,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _git_revision() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


class MetricsLog:
    """metrics.csv, one row per logged step and per evaluation, appended as training goes."""

    def __init__(self, path: Path):
        self.path = path
        if not path.exists():
            with path.open("w", newline="") as handle:
                csv.DictWriter(handle, METRIC_FIELDS).writeheader()

    def truncate_after(self, step: int) -> None:
        """Drop rows a killed run logged after its last checkpoint, so a resume repeats nothing,
        and a last row a kill cut short mid-write (no line end): its numbers are cut too."""
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines.pop()
        rows = [row for row in csv.DictReader(lines) if int(row["step"]) <= step]
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, METRIC_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def close_epoch(self, epoch: int, step: int) -> dict:
        """Append the epoch's row: the mean of its logged step rows (the same after a resume)."""
        rows = pd.read_csv(self.path)
        steps = rows[(rows["kind"] == "step") & (rows["epoch"] == epoch)]
        summary = {"kind": "epoch", "epoch": epoch, "step": step}
        summary.update({key: round(float(steps[key].mean()), 6) for key in ("loss", "ce", "consistency", "clips_per_s")})
        self.append(**summary)
        return summary

    def append(self, **row) -> None:
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, METRIC_FIELDS).writerow(row)
            handle.flush()


def write_table(path: Path, table: pd.DataFrame) -> None:
    """A result CSV, written atomically."""
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False)


class ProblemsLog:
    """problems.csv: every training video that failed, why, and the first epoch it failed in.

    One row per (path, reason), however many epochs or ranks hit it. Rows already in the file
    (a run before its --resume) are kept, so a resume never forgets earlier failures. `write`
    replaces the whole file atomically (header even if no video failed).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.first_epoch: dict[tuple[str, str], int] = {}
        if path.exists():
            rows = pd.read_csv(path, dtype=str, keep_default_na=False)[PROBLEM_FIELDS]
            self.add((file, reason, int(epoch)) for file, reason, epoch in rows.itertuples(index=False))

    def add(self, failures: Iterable[tuple[str, str, int]]) -> None:
        """Record (path, reason, epoch) failures, keeping the earliest epoch of each."""
        for path, reason, epoch in failures:
            key = (path, reason)
            self.first_epoch[key] = min(epoch, self.first_epoch.get(key, epoch))

    def failures(self) -> list[tuple[str, str]]:
        """(path, reason) of every recorded failure, sorted."""
        return sorted(self.first_epoch)

    def write(self) -> None:
        rows = [(file, reason, epoch) for (file, reason), epoch in sorted(self.first_epoch.items())]
        write_table(self.path, pd.DataFrame(rows, columns=PROBLEM_FIELDS))
