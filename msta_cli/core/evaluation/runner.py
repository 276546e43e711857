"""Evaluate one model on every test set of a config and write the per-set result files."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from msta_cli.core.backbone import describe_backbone, open_clip_source
from msta_cli.core.checkpoint import (
    CONFIG_FILE,
    check_adapter_weights,
    checkpoint_selection,
    model_from_checkpoint,
    read_adapter_config,
    weights_identity,
)
from msta_cli.core.config import Config, ModelConfig
from msta_cli.core.errors import InputError, MstaError
from msta_cli.core.evaluation.evaluator import evaluate_set, set_paths, set_views
from msta_cli.core.evaluation.metrics import SetScores
from msta_cli.core.evaluation.tables import OPTIMISTIC, protocol_table
from msta_cli.core.model import MstaModel, create_model, gflops_per_view, parameter_summary
from msta_cli.core.training.distributed import Distributed
from msta_cli.core.training.run_directory import write_table

ZERO_SHOT = "zero-shot"
EVAL_PROBLEMS = "eval_problems.csv"


def evaluate_model(
    model: MstaModel, config: Config, method: str, label: str, directory: Path,
    world: Distributed, device: torch.device, on_event: Callable[[dict], None], model_selection: str | None = None,
) -> list[dict]:
    """Evaluate on every test set, write per-set files, and return one result row per set.
    `model_selection` (how the adapters were chosen) defaults to the config's."""
    parameters = parameter_summary(model)
    model.eval()
    gflops = float(f"{gflops_per_view(model, config.data.num_frames, config.data.input_size):.4g}")
    model_selection = model_selection or config.eval.model_selection
    selection = OPTIMISTIC if model_selection == "best-on-test" and method != ZERO_SHOT else model_selection
    rows = []
    for eval_set in config.eval.sets:
        on_event({"event": "evaluate", "method": method, "run": label, "split": eval_set.name})
        views = set_views(config, eval_set)
        scores = evaluate_set(model, config, eval_set, views, device, world)
        if world.is_main:
            write_set_files(directory, scores)
        if scores.failures:
            on_event({
                "event": "failed_videos", "split": eval_set.name, "failed": len(scores.failures),
                "videos": len(scores.paths) + len(scores.failures), "unscored_classes": scores.unscored_classes(),
                "problems": str(set_file(directory, scores.name, EVAL_PROBLEMS)),
            })
        rows.append({
            "method": method, "run": label, **scores.summary(), "views": f"{views.clips}x{views.crops}",
            "gflops_per_view": gflops, "trainable": parameters["trainable"], "total": parameters["total"],
            "selection": selection if method != ZERO_SHOT else "-",
        })
    return rows


def write_set_files(directory: Path, scores: SetScores) -> None:
    """predictions, per-class accuracy, confusion matrix and problems of one test set."""
    directory.mkdir(parents=True, exist_ok=True)
    write_table(set_file(directory, scores.name, "predictions.csv"), scores.predictions_table())
    write_table(set_file(directory, scores.name, "per_class.csv"), scores.per_class())
    write_table(set_file(directory, scores.name, "confusion.csv"), scores.confusion().reset_index())
    problems = set_file(directory, scores.name, EVAL_PROBLEMS)
    if scores.failures:
        write_table(problems, pd.DataFrame(scores.failures, columns=["path", "reason", "label"]))
    else:  # an earlier evaluation's, before the data was fixed, would list failures that are gone
        problems.unlink(missing_ok=True)


def set_file(directory: Path, split: str, name: str) -> Path:
    """One of a test set's files: prefixed with the set's name unless it is `test`."""
    return directory / (name if split == "test" else f"{split}_{name}")


def model_directory(output: Path, method: str, run: str) -> Path:
    """Where one model's per-set files go: zero-shot/, a protocol run's folder, or `output` itself
    (the layout of both `msta evaluate` and `msta train`)."""
    if method == ZERO_SHOT:
        return output / ZERO_SHOT
    return output / run if run else output


def require_scored(results: pd.DataFrame, config: Config, output: Path) -> None:
    """Fail when no video of a test set could be scored (a wrong video root, a codec nothing reads):
    its row has no accuracy, and a command that exits 0 passes it off as a measurement.

    Called by the main process once the result files are written, so they can be inspected; it
    reads an example failure from the set's eval_problems.csv, which only that process writes.
    """
    sets = {eval_set.name: eval_set for eval_set in config.eval.sets}
    messages = []
    for split, rows in results[results["scored"] == 0].groupby("split", sort=False):
        first = rows.iloc[0]
        problems = set_file(model_directory(output, first["method"], first["run"]), split, EVAL_PROBLEMS)
        path, reason, _ = pd.read_csv(problems, keep_default_na=False).iloc[0]
        root = set_paths(config, sets[split])[0]
        messages.append(
            f"test set {split}: no video could be scored ({first['failed']} failed, e.g. {root / path}: {reason}); "
            f"every failure is in {problems}"
        )
    if messages:
        raise MstaError("\n".join(messages))


def default_output(target: Path | None, stamp: str) -> Path:
    """Where `msta evaluate` writes when not told: beside the run, never inside a checkpoint
    folder, which travels with the adapter files and which resuming training replaces.

    runs/evaluate-STAMP without a target; RUN/evaluate-STAMP for a run directory or a checkpoint
    in its checkpoints/ folder; a sibling FOLDER-evaluate-STAMP for any other adapter folder.
    """
    name = f"evaluate-{stamp}"
    if target is None:
        return Path("runs") / name
    target = target.resolve()
    if (target / CONFIG_FILE).is_file():
        if target.parent.name == "checkpoints":
            return target.parent.parent / name
        return target.parent / f"{target.name}-{name}"
    return target / name


def check_data_roots(config: Config) -> None:
    """A missing data folder is usually a moved one: say how to point the recipe at it, which the
    bare "labels.csv: file not found" of reading the lists would not."""
    for eval_set in config.eval.sets:
        root = Path(eval_set.root or config.data.root)
        if root.is_dir():
            continue
        if eval_set.root:
            raise InputError(f"test set {eval_set.name}: root {root}: folder not found; if it moved, set the set's root in the recipe")
        raise InputError(f"data.root {root}: folder not found; if the dataset moved, pass --set data.root=NEW_FOLDER")


def checkpoint_overrides(config: Config, checkpoints: list[tuple[str, Path]]) -> list[str]:
    """Refuse, before anything is scored, a checkpoint whose weights cannot be read or that was
    trained on another backbone than the recipe's model.backbone (the zero-shot row would
    measure one backbone and the MSTA rows another), and return the recipe
    keys whose values the checkpoints replace with their own (a model is rebuilt from its
    checkpoint's adapter settings and templates)."""
    keys: list[str] = []
    for _, checkpoint in checkpoints:
        check_adapter_weights(checkpoint)
        model, adapter, templates = read_adapter_config(checkpoint)
        if not _same_backbone(model, config.model):
            raise InputError(
                f"{checkpoint}: trained on backbone {describe_backbone(model.backbone, model.pretrained)}, but the "
                f"recipe's is {describe_backbone(config.model.backbone, config.model.pretrained)}; "
                "evaluate it with the recipe it was trained with"
            )
        recipe_adapter = dataclasses.asdict(config.adapter)
        keys += [f"adapter.{key}" for key, value in dataclasses.asdict(adapter).items() if recipe_adapter.get(key) != value]
        if templates != list(config.text.templates):
            keys.append("text.templates")
    return list(dict.fromkeys(keys))


def _same_backbone(trained: ModelConfig, recipe: ModelConfig) -> bool:
    """Names as open_clip reads them; local-dir: folders compared as folders (relative or not);
    for a name whose weights come from model.pretrained, the weights too (a tag, or a local
    file by its name, as checkpoints record them)."""
    first, second = open_clip_source(trained.backbone), open_clip_source(recipe.backbone)
    if first.startswith("local-dir:") and second.startswith("local-dir:"):
        return Path(first.removeprefix("local-dir:")).resolve() == Path(second.removeprefix("local-dir:")).resolve()
    if first != second:
        return False
    return first.startswith("hf-hub:") or trained.pretrained == weights_identity(recipe.pretrained)


def run_checkpoints(run_dir: Path) -> list[tuple[str, Path]]:
    """The result checkpoint of each training run in a run directory: best if kept, else last."""
    runs = [run_dir, *sorted((p for p in run_dir.iterdir() if p.is_dir() and (p / "checkpoints").is_dir()), key=_natural_order)]
    found = []
    for directory in runs:
        checkpoints = directory / "checkpoints"
        chosen = checkpoints / "best" if (checkpoints / "best").is_dir() else checkpoints / "last"
        if (chosen / CONFIG_FILE).is_file():
            found.append(("" if directory == run_dir else directory.name, chosen))
    if not found:
        raise InputError(f"{run_dir}: no checkpoints/last or checkpoints/best with an {CONFIG_FILE} in it or its runs")
    return found


def recorded_selection(checkpoint: Path) -> str | None:
    """How the checkpoint was chosen, as it records; one from before msta recorded it is `last`
    in a `last` folder, and otherwise (None) labelled by the recipe."""
    return checkpoint_selection(checkpoint) or ("last" if checkpoint.name == "last" else None)


def _natural_order(path: Path) -> list:
    """k2, k4, k8, k16 and seed2 before seed10, as the protocol trained them."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.name)]


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
        rows += evaluate_model(baseline, config, ZERO_SHOT, "", model_directory(output, ZERO_SHOT, ""), world, device, on_event)
    for label, checkpoint in checkpoints:
        model = model_from_checkpoint(checkpoint, device)
        directory = model_directory(output, "MSTA", label)
        rows += evaluate_model(model, config, "MSTA", label, directory, world, device, on_event, recorded_selection(checkpoint))
    results = pd.DataFrame(rows)
    if world.is_main:
        write_table(output / "results.csv", results)
    table = protocol_table(config.protocol.kind, results)
    if world.is_main:
        write_table(output / "protocol.csv", table)
    return results, table
