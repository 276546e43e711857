"""A benchmark protocol as one run: its training runs, their evaluation, and the protocol table.

base2novel trains one run per seed (`{seed}` in data.train_split), fewshot one per K
(`{shots}`), the others a single run; every run is evaluated on all of eval.sets, and the
frozen backbone (zero-shot CLIP) is evaluated on the same sets by the same code as a baseline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from msta_cli.core.checkpoint import load_adapter
from msta_cli.core.config import Config
from msta_cli.core.descriptions import descriptions_for, load_descriptions
from msta_cli.core.errors import InputError
from msta_cli.core.evaluation.evaluator import check_eval_sets
from msta_cli.core.evaluation.runner import ZERO_SHOT, evaluate_model, model_directory
from msta_cli.core.evaluation.tables import protocol_table
from msta_cli.core.model import create_model
from msta_cli.core.training.distributed import Distributed
from msta_cli.core.training.run_directory import start_run_directory, write_table
from msta_cli.core.training.trainer import train_run
from msta_cli.core.training.training_data import TrainingData, load_training_data

RESULTS = "results.csv"


@dataclass
class PlannedRun:
    label: str
    config: Config
    directory: Path
    data: TrainingData


def plan_runs(config: Config, run_dir: Path) -> list[PlannedRun]:
    """Every training run of the protocol, with its lists read and checked up front."""
    kind = config.protocol.kind
    names = [eval_set.name for eval_set in config.eval.sets]
    if kind == "base2novel" and not {"base", "novel"} <= set(names):
        raise InputError(
            f"protocol.kind base2novel reports base, novel and their harmonic mean: eval.sets needs "
            f"sets named base and novel (this recipe has {', '.join(names)})"
        )
    if kind == "base2novel":
        variants = [(f"seed{seed}", {"seed": seed}) for seed in config.protocol.seeds]
    elif kind == "fewshot":
        variants = [(f"k{shots}", {"shots": shots}) for shots in config.protocol.shots]
    else:
        variants = [("", {})]
    runs = []
    for label, values in variants:
        variant = copy.deepcopy(config)
        variant.seed = values.get("seed", config.seed)
        variant.data.train_split = config.data.train_split.format(**values)
        directory = model_directory(run_dir, "MSTA", label)
        runs.append(PlannedRun(label, variant, directory, load_training_data(variant)))
        if config.loss.consistency_weight:
            descriptions_for(load_descriptions(config.loss.descriptions), runs[-1].data.class_names)
    check_eval_sets(config)
    return runs


def run_protocol(
    config: Config,
    run_dir: Path,
    world: Distributed,
    device: torch.device,
    resume: bool = False,
    on_event: Callable[[dict], None] = lambda event: None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and evaluate every run (skipping finished ones on resume); returns (results, table)."""
    runs = plan_runs(config, run_dir)
    if world.is_main and not resume:
        start_run_directory(run_dir, config, world.world_size, device)
    rows = []
    if config.eval.zero_shot_baseline:
        baseline = create_model(config, device, adapters=False)
        rows += evaluate_model(baseline, config, ZERO_SHOT, "", model_directory(run_dir, ZERO_SHOT, ""), world, device, on_event)
    for run in runs:
        finished = run.directory / RESULTS
        if resume and finished.is_file() and run.directory != run_dir:
            previous = pd.read_csv(finished, keep_default_na=False)
            if (previous["scored"] > 0).all():
                rows += previous.to_dict("records")
                continue
            # a test set no video of which could be scored (data since fixed?): evaluate again;
            # the finished training is resumed from its last checkpoint and does nothing
        continuing = resume and (run.directory / "checkpoints" / "last").exists()
        if world.is_main and run.directory != run_dir and not continuing:
            start_run_directory(run.directory, run.config, world.world_size, device)
        on_event({"event": "run", "label": run.label or config.name})
        outcome = train_run(run.config, run.directory, run.data, world, device, continuing, on_event)
        model = outcome.model
        if config.eval.model_selection != "last":
            load_adapter(model, run.directory / "checkpoints" / "best")
        run_rows = evaluate_model(model, run.config, "MSTA", run.label, run.directory, world, device, on_event)
        if world.is_main and run.directory != run_dir:
            write_table(finished, pd.DataFrame(run_rows))
        rows += run_rows
    results = pd.DataFrame(rows)
    table = protocol_table(config.protocol.kind, results)
    if world.is_main:
        write_table(run_dir / RESULTS, results)
        write_table(run_dir / "protocol.csv", table)
    return results, table
