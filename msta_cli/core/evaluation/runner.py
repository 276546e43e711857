"""Evaluate one model on every test set of a config and write the per-set result files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from msta_cli.core.checkpoint import CONFIG_FILE, model_from_checkpoint
from msta_cli.core.config import Config
from msta_cli.core.errors import InputError
from msta_cli.core.evaluation.evaluator import Views, evaluate_set
from msta_cli.core.evaluation.metrics import SetScores
from msta_cli.core.evaluation.tables import OPTIMISTIC, protocol_table
from msta_cli.core.model import MstaModel, create_model, parameter_summary
from msta_cli.core.training.distributed import Distributed
from msta_cli.core.training.run_directory import write_table

ZERO_SHOT = "zero-shot"


def evaluate_model(
    model: MstaModel, config: Config, method: str, label: str, directory: Path,
    world: Distributed, device: torch.device, on_event: Callable[[dict], None],
) -> list[dict]:
    """Evaluate on every test set, write per-set files, and return one result row per set."""
    parameters = parameter_summary(model)
    selection = OPTIMISTIC if config.eval.model_selection == "best-on-test" and method != ZERO_SHOT else config.eval.model_selection
    rows = []
    for eval_set in config.eval.sets:
        on_event({"event": "evaluate", "method": method, "run": label, "split": eval_set.name})
        views = Views.parse(eval_set.views or config.eval.views)
        scores = evaluate_set(model, config, eval_set, views, device, world)
        if world.is_main:
            write_set_files(directory, scores)
        rows.append({
            "method": method, "run": label, **scores.summary(), "views": f"{views.clips}x{views.crops}",
            "trainable": parameters["trainable"], "total": parameters["total"],
            "selection": selection if method != ZERO_SHOT else "-",
        })
    return rows


def write_set_files(directory: Path, scores: SetScores) -> None:
    """predictions, per-class accuracy, confusion matrix and problems of one test set."""
    directory.mkdir(parents=True, exist_ok=True)
    prefix = "" if scores.name == "test" else f"{scores.name}_"
    write_table(directory / f"{prefix}predictions.csv", scores.predictions_table())
    write_table(directory / f"{prefix}per_class.csv", scores.per_class())
    write_table(directory / f"{prefix}confusion.csv", scores.confusion().reset_index())
    if scores.failures:
        write_table(directory / f"{prefix}eval_problems.csv", pd.DataFrame(scores.failures, columns=["path", "reason"]))


def run_checkpoints(run_dir: Path) -> list[tuple[str, Path]]:
    """The result checkpoint of each training run in a run directory: best if kept, else last."""
    runs = [run_dir, *sorted(p for p in run_dir.iterdir() if p.is_dir() and (p / "checkpoints").is_dir())]
    found = []
    for directory in runs:
        checkpoints = directory / "checkpoints"
        chosen = checkpoints / "best" if (checkpoints / "best").is_dir() else checkpoints / "last"
        if (chosen / CONFIG_FILE).is_file():
            found.append(("" if directory == run_dir else directory.name, chosen))
    if not found:
        raise InputError(f"{run_dir}: no checkpoints/last or checkpoints/best with an {CONFIG_FILE} in it or its runs")
    return found


def evaluate_checkpoints(
    config: Config,
    checkpoints: list[tuple[str, Path]],
    output: Path,
    world: Distributed,
    device: torch.device,
    on_event: Callable[[dict], None] = lambda event: None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate each checkpoint (and zero-shot CLIP when asked) into `output`; (results, table)."""
    rows = []
    if config.eval.zero_shot_baseline or not checkpoints:
        baseline = create_model(config, device, adapters=False)
        rows += evaluate_model(baseline, config, ZERO_SHOT, "", output / ZERO_SHOT, world, device, on_event)
    for label, checkpoint in checkpoints:
        model = model_from_checkpoint(checkpoint, device)
        rows += evaluate_model(model, config, "MSTA", label, output / label if label else output, world, device, on_event)
    results = pd.DataFrame(rows)
    table = protocol_table(config.protocol.kind, results)
    if world.is_main:
        write_table(output / "results.csv", results)
        write_table(output / "protocol.csv", table)
    return results, table
