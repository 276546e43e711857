"""A benchmark protocol as one run: its training runs, their evaluation, and the protocol table.

base2novel trains one run per seed (`{seed}` in data.train_split), fewshot one per K
(`{shots}`), the others a single run; every run is evaluated on all of eval.sets, and the
frozen backbone (zero-shot CLIP) is evaluated on the same sets by the same code as a baseline.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import pandas as pd
import torch

from msta_cli.core.checkpoint import load_adapter
import msta_cli
from msta_cli.core.config import Config, config_to_dict, dump_config
from msta_cli.core.descriptions import check_description_source, descriptions_for, load_descriptions
from msta_cli.core.errors import InputError
from msta_cli.core.files import write_text_atomic
from msta_cli.core.evaluation.evaluator import check_eval_sets
from msta_cli.core.evaluation.runner import ZERO_SHOT, evaluate_model, model_directory
from msta_cli.core.evaluation.tables import protocol_table
from msta_cli.core.model import create_model
from msta_cli.core.training.distributed import Distributed, broadcast_object, gather_objects
from msta_cli.core.training.run_directory import (
    CHECKPOINTS,
    CONFIG,
    check_resumable,
    check_world_size,
    new_run_directory,
    record_config,
    start_run_directory,
    write_table,
)
from msta_cli.core.training.state import restore_checkpoint
from msta_cli.core.training.trainer import Interrupted, batching, train_run
from msta_cli.core.training.training_data import TrainingData, check_model_selection, load_training_data

RESULTS = "results.csv"
ZERO_SHOT_INPUTS = "inputs.json"  # in zero-shot/: what its rows were scored with
FINISHED, CONTINUE, START = "finished", "continue", "start"
T = TypeVar("T")


@dataclass
class PlannedRun:
    label: str
    config: Config
    directory: Path
    data: TrainingData


def resume_command(run_dir: Path, world: Distributed) -> str:
    """The command that continues a stopped run: with as many processes, which a resume needs."""
    return f"msta train --resume {run_dir}" + (f" --nproc {world.world_size}" if world.world_size > 1 else "")


def check_recipe(config: Config, world: Distributed) -> None:
    """What a recipe must get right whatever its data holds, checked without reading any: the
    batch split over the processes, the sets a protocol reports, a source of descriptions for
    the consistency loss, and where best-on-val validates. `train --dry-run` runs it too."""
    batching(config, world)
    names = [eval_set.name for eval_set in config.eval.sets]
    if config.protocol.kind == "base2novel" and not {"base", "novel"} <= set(names):
        raise InputError(
            f"protocol.kind base2novel reports base, novel and their harmonic mean: eval.sets needs "
            f"sets named base and novel (this recipe has {', '.join(names)})"
        )
    if config.loss.consistency_weight:
        check_description_source(config.loss.descriptions)
    check_model_selection(config)


def plan_runs(config: Config, run_dir: Path, world: Distributed, resume: bool = False) -> list[PlannedRun]:
    """Every training run of the protocol, with its lists read and every input checked up front,
    so that bad input exits with 2 and leaves nothing behind. `--nproc` calls it in the launching
    process too, with `world` standing for the processes it is about to start."""
    if resume:
        check_world_size(run_dir, world.world_size)
    check_recipe(config, world)
    kind = config.protocol.kind
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
        if resume and directory != run_dir and (directory / CONFIG).is_file():
            check_resumable(directory, variant)
        runs.append(PlannedRun(label, variant, directory, load_training_data(variant)))
        if config.loss.consistency_weight:
            descriptions_for(load_descriptions(config.loss.descriptions), runs[-1].data.class_names)
    check_eval_sets(config)
    return runs


def prepare_protocol(config: Config, resume: Path | None, world: Distributed) -> tuple[Path, list[PlannedRun]]:
    """The run directory (`resume`, or a new one named by rank 0: a timestamp must be the same on
    every process) and its planned runs, before anything is written. An input error on any process
    is raised on all of them, so none is left waiting in a collective for one that stopped."""
    run_dir = resume
    if run_dir is None:
        named = _on_every_process(lambda: str(new_run_directory(config)) if world.is_main else None, world)
        run_dir = Path(broadcast_object(named, world))
    runs = _on_every_process(lambda: plan_runs(config, run_dir, world, resume is not None), world)
    return run_dir, runs


def _on_every_process(check: Callable[[], T], world: Distributed) -> T:
    """`check()` in this process; the first InputError any process's check raised, raised on all."""
    try:
        result, error = check(), None
    except InputError as failure:
        result, error = None, str(failure)
    errors = [message for message in gather_objects(error, world) if message is not None]
    if errors:
        raise InputError(errors[0])
    return result


def run_protocol(
    config: Config,
    run_dir: Path,
    runs: list[PlannedRun],
    world: Distributed,
    device: torch.device,
    resume: bool = False,
    on_event: Callable[[dict], None] = lambda event: None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and evaluate every planned run; returns (results, table).

    On resume a run continues from its last checkpoint, or starts again from step 0 if it was
    killed before its first; a finished run trained with the config given now is not trained or
    evaluated again. config.yaml records the config given now (a resume's overrides included).
    """
    if world.is_main:
        if resume:
            record_config(run_dir, config)
        else:
            start_run_directory(run_dir, config, world.world_size, device)
    rows = _zero_shot_rows(config, run_dir, world, device, on_event, resume) if config.eval.zero_shot_baseline else []
    for run in runs:
        # decided on the main process alone, which renames and writes as it decides
        step = broadcast_object(_next_step(run, run_dir, world, device, resume) if world.is_main else None, world)
        if step == FINISHED:
            rows += pd.read_csv(run.directory / RESULTS, keep_default_na=False).to_dict("records")
            continue
        on_event({"event": "run", "label": run.label or config.name})
        for note in run.data.notes:
            on_event({"event": "note", "text": note})
        try:
            outcome = train_run(run.config, run.directory, run.data, world, device, step == CONTINUE, on_event)
        except Interrupted as stop:  # the whole protocol resumes from its top folder, not a run's own
            which = f"{run.label}: " if run.label else ""
            raise Interrupted(f"{which}{stop}. Resume with: {resume_command(run_dir, world)}") from None
        model = outcome.model
        if config.eval.model_selection != "last":
            load_adapter(model, run.directory / CHECKPOINTS / "best")
        run_rows = evaluate_model(model, run.config, "MSTA", run.label, run.directory, world, device, on_event)
        if world.is_main and run.directory != run_dir:
            write_table(run.directory / RESULTS, pd.DataFrame(run_rows))
        rows += run_rows
    results = pd.DataFrame(rows)
    if world.is_main:
        write_table(run_dir / RESULTS, results)
    table = protocol_table(config.protocol.kind, results)
    if world.is_main:
        write_table(run_dir / "protocol.csv", table)
    return results, table


def _zero_shot_rows(
    config: Config, run_dir: Path, world: Distributed, device: torch.device, on_event: Callable[[dict], None], resume: bool
) -> list[dict]:
    """The frozen backbone's rows. A resume reuses the rows scored with the same inputs, each set
    scored: adapters never change them, and on a benchmark they take minutes to hours (K400's
    validation set at 4x3 views), which every `--resume optim.epochs=N` would spend again."""
    directory = model_directory(run_dir, ZERO_SHOT, "")
    inputs = json.loads(json.dumps(_zero_shot_inputs(config)))
    if resume:
        reused = broadcast_object(_scored_with(directory, inputs) if world.is_main else None, world)
        if reused is not None:
            return reused
    baseline = create_model(config, device, adapters=False)
    rows = evaluate_model(baseline, config, ZERO_SHOT, "", directory, world, device, on_event)
    if world.is_main:
        write_table(directory / RESULTS, pd.DataFrame(rows))
        write_text_atomic(directory / ZERO_SHOT_INPUTS, json.dumps(inputs, indent=2, sort_keys=True) + "\n")
    return rows


def _zero_shot_inputs(config: Config) -> dict:
    """What the zero-shot rows depend on: backbone, prompts, clips (not the loader's workers),
    views, test sets, precision, and msta itself."""
    everything = config_to_dict(config)
    return {
        "msta": msta_cli.__version__, "model": everything["model"], "text": everything["text"],
        "data": {key: value for key, value in everything["data"].items() if key != "workers"},
        "views": everything["eval"]["views"], "sets": everything["eval"]["sets"], "precision": everything["optim"]["precision"],
    }


def _scored_with(directory: Path, inputs: dict) -> list[dict] | None:
    """The saved zero-shot rows, if scored with `inputs` and every set scored; else None."""
    saved, recorded = directory / RESULTS, directory / ZERO_SHOT_INPUTS
    if not (saved.is_file() and recorded.is_file()):
        return None
    try:
        if json.loads(recorded.read_text(encoding="utf-8")) != inputs:
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    rows = pd.read_csv(saved, keep_default_na=False)
    return rows.to_dict("records") if (rows["scored"] > 0).all() else None


def _next_step(run: PlannedRun, run_dir: Path, world: Distributed, device: torch.device, resume: bool) -> str:
    """Main process: FINISHED for a run a resume finds trained with the config given now and
    scored on every set; else CONTINUE from its last checkpoint (put back, with `best`, if a kill
    left it retired), recording its config; else START afresh (the run directory of a single run
    was started with the protocol's)."""
    finished = run.directory / RESULTS
    if resume and finished.is_file() and run.directory != run_dir and _trained_with(run):
        if (pd.read_csv(finished, keep_default_na=False)["scored"] > 0).all():
            return FINISHED
        # a test set no video of which could be scored (data since fixed?): evaluate again;
        # the finished training is resumed from its last checkpoint and does nothing
    if resume and restore_checkpoint(run.directory / CHECKPOINTS / "last"):
        restore_checkpoint(run.directory / CHECKPOINTS / "best")
        record_config(run.directory, run.config)
        return CONTINUE
    if resume or run.directory != run_dir:
        start_run_directory(run.directory, run.config, world.world_size, device)
    return START


def _trained_with(run: PlannedRun) -> bool:
    """Whether the run's recorded config is its config now (a resume may extend optim.epochs)."""
    recorded = run.directory / CONFIG
    return recorded.is_file() and recorded.read_text() == dump_config(run.config)
