"""Multi-view testing: deterministic clips x crops per video, softmax averaged over views.

Under torchrun every rank scores a shard; per-video results are gathered and the sampler's
padding duplicates are dropped by sample index, so each test video counts exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from msta_cli.core.config import Config, EvalSet
from msta_cli.core.data.dataset import VideoClipDataset, make_loader
from msta_cli.core.data.lists import read_labels, read_split
from msta_cli.core.data.sharding import ShardedSampler
from msta_cli.core.data.transforms import TestTransform
from msta_cli.core.errors import InputError, invalid_yaml
from msta_cli.core.evaluation.metrics import SetScores
from msta_cli.core.model import MstaModel
from msta_cli.core.prepare.writer import MANIFEST, PENDING
from msta_cli.core.synthetic.dataset import check_world_version
from msta_cli.core.training.distributed import Distributed, gather_objects

# METHOD.md section 5: the views each benchmark reports (clips x crops), which `auto` picks by the
# dataset name in a set's dataset.yaml; any other dataset (a folder of one's own, a set without
# a dataset.yaml) gets FALLBACK_VIEWS, the default before `auto` existed.
AUTO_VIEWS = "auto"
BENCHMARK_VIEWS = {"hmdb51": "10x3", "ucf101": "5x3", "kinetics400": "4x3", "kinetics600": "4x3", "ssv2": "2x3"}
FALLBACK_VIEWS = "10x3"


@dataclass(frozen=True)
class Views:
    clips: int
    crops: int

    @classmethod
    def parse(cls, text: str) -> "Views":
        """`CLIPSxCROPS`, e.g. 10x3."""
        clips, sep, crops = text.lower().partition("x")
        if not (sep and clips.isdigit() and crops.isdigit() and int(clips) >= 1 and int(crops) in (1, 3)):
            raise InputError(f"views '{text}': expected CLIPSxCROPS with clips at least 1 and crops 1 or 3, e.g. 10x3")
        return cls(int(clips), int(crops))


def set_views(config: Config, eval_set: EvalSet) -> Views:
    """The set's views, else eval.views; `auto` is the benchmark's own for a prepared dataset."""
    text = eval_set.views or config.eval.views
    if text.lower() != AUTO_VIEWS:
        return Views.parse(text)
    manifest = _manifest(Path(eval_set.root or config.data.root)) or {}
    return Views.parse(BENCHMARK_VIEWS.get(str(manifest.get("name")), FALLBACK_VIEWS))


def set_paths(config: Config, eval_set: EvalSet) -> tuple[Path, Path, Path]:
    """(video root, split CSV, labels CSV) of a test set, relative to its prepared dataset."""
    root = Path(eval_set.root or config.data.root)
    return video_root(root), root / eval_set.split, root / eval_set.labels


def check_eval_sets(config: Config) -> None:
    """Read every test set's root, lists and views, so that a mistake in the last set stops a
    command before hours of training or testing, not after."""
    for eval_set in config.eval.sets:
        _, split_path, labels_path = set_paths(config, eval_set)
        read_split(split_path, len(read_labels(labels_path)), each_video_once=True)
        set_views(config, eval_set)


def video_root(prepared: Path) -> Path:
    """The video root `msta prepare` recorded in dataset.yaml (the folder itself when absent).

    Checked here, before training or testing: a root that is not a folder (videos moved to
    another disk or machine) would otherwise fail every video one by one, and a training run
    would finish without having seen a clip. A relative root is taken from the prepared
    folder, so a dataset moved together with its videos can keep working. A synthetic world
    rendered by another msta is refused here too, and so is a folder msta prepare has not
    finished writing: its lists name videos elsewhere, which only the missing dataset.yaml
    records. A folder of one's own lists and videos has no dataset.yaml and no PENDING record.
    """
    manifest = _manifest(prepared)
    if manifest is None:
        if (prepared / PENDING).is_file():
            raise InputError(
                f"{prepared}: msta prepare has not finished writing this folder (it writes dataset.yaml last); "
                "run msta prepare again"
            )
        return prepared
    if manifest.get("name") == "synthetic":
        check_world_version(manifest, prepared)
    if not manifest.get("video_root"):
        return prepared
    root = prepared / str(manifest["video_root"])  # an absolute video_root stays as it is
    if not root.is_dir():
        raise InputError(
            f"{prepared / MANIFEST}: video_root {manifest['video_root']} is not a folder; if the videos moved, "
            f"set video_root there to where they are now (absolute, or relative to {prepared}), "
            "or run msta prepare again"
        )
    return root


def _manifest(prepared: Path) -> dict | None:
    """The dataset.yaml msta prepare wrote in `prepared`, or None for a folder without one."""
    description = prepared / MANIFEST
    if not description.is_file():
        return None
    try:
        manifest = yaml.safe_load(description.read_text(encoding="utf-8")) or {}
    except yaml.MarkedYAMLError as error:
        raise invalid_yaml(description, error) from None
    except UnicodeDecodeError as error:
        raise InputError(f"{description}: not UTF-8 text ({error.reason} at byte {error.start}); run msta prepare again") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{description}: expected a mapping of keys to values, as msta prepare writes")
    return manifest


@torch.no_grad()
def evaluate_set(
    model: MstaModel,
    config: Config,
    eval_set: EvalSet,
    views: Views,
    device: torch.device,
    world: Distributed = Distributed(),
) -> SetScores:
    """Score every video of one test set; the full result is returned on every rank."""
    root, split_path, labels_path = set_paths(config, eval_set)
    class_names = read_labels(labels_path)
    split = read_split(split_path, len(class_names), each_video_once=True)
    dataset = VideoClipDataset(
        split, root, config.data.num_frames, mode="test", clips=views.clips,
        sampling=config.data.sampling, stride=config.data.dense_stride, backend=config.data.video_backend,
        seed=config.seed, max_short_side=config.data.input_size,
    )
    sampler = ShardedSampler(len(dataset), world.rank, world.world_size, shuffle=False)
    loader = make_loader(dataset, config.eval.batch_size, config.data.workers, sampler, pin_memory=device.type == "cuda")
    preprocessing = model.backbone.preprocessing
    transform = TestTransform(preprocessing.mean, preprocessing.std, config.data.input_size, views.crops)
    model.eval()
    class_embeddings = model.class_embeddings(class_names)
    # Scores stay on the device until the loop ends: moving each batch's to the CPU would wait for
    # its kernels, so the next batch's could not be queued while the GPU runs them.
    on_device: list[tuple[list[int], torch.Tensor]] = []
    failures: dict[int, tuple[str, str, int]] = {}
    index_of_path = {path: i for i, path in enumerate(dataset.paths)}
    for batch in loader:
        for failure in batch.failures:
            index = index_of_path[failure.path]
            failures[index] = (failure.path, failure.reason, dataset.labels[index])
        if not len(batch):
            continue
        clips = transform(batch.videos.to(device, non_blocking=True), batch.sizes)
        count, num_views = clips.shape[:2]
        with torch.autocast(device.type, dtype=_autocast_dtype(config), enabled=config.optim.precision != "fp32"):
            logits = model(clips.flatten(0, 1), class_embeddings)
        probabilities = logits.float().softmax(dim=-1).reshape(count, num_views, -1).mean(dim=1)
        on_device.append((batch.indices.tolist(), probabilities))
    scored = {index: row for indices, rows in on_device for index, row in zip(indices, rows.cpu().numpy())}
    merged_scores: dict[int, np.ndarray] = {}
    merged_failures: dict[int, tuple[str, str, int]] = {}
    for rank_scores, rank_failures in gather_objects((scored, failures), world):
        merged_scores.update(rank_scores)
        merged_failures.update(rank_failures)
    order = sorted(merged_scores)
    return SetScores(
        name=eval_set.name,
        class_names=class_names,
        paths=[dataset.paths[i] for i in order],
        labels=np.array([dataset.labels[i] for i in order], dtype=np.int64),
        probabilities=np.stack([merged_scores[i] for i in order]) if order else np.zeros((0, len(class_names))),
        failures=[merged_failures[i] for i in sorted(merged_failures)],
    )


def _autocast_dtype(config: Config) -> torch.dtype:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.optim.precision, torch.float32)
