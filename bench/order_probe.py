"""How much frame order and position a frozen backbone's embeddings carry, and what MSTA learns of it.

On the synthetic world's 32 time-reversal-paired classes (blinking left out; all training and test
videos of each), three measurements:

- `probe`: linear classifiers on the frozen per-frame embeddings, no adapters: the mean of the
  frames (what MSTA pools, blind to order), the frames concatenated in order, and last minus first
  frame; plus linear probes of position and shape on 3,000 captioned stills. Minutes on a CPU.
- `train TEMPORAL`: MSTA (the quickstart recipe, zero-initialised up-projections) trained on those
  paired classes only, with the given temporal up-projection (grouped, depthwise or none).
Each prints direction-pair accuracy on the test videos (chance 50%).

Two more, per direction pair:
- `margins --runs RUN ...`: for trained runs (e.g. of bench/synthetic_ablation.py), how far the
  model's order moves a pair's logit margin (true minus partner class) between a test clip and
  the same clip reversed, against how much that margin varies from clip to clip of one class,
  and how alike the trained model's class embeddings of the pair's two members are.
- `descriptions`: cosine similarity of the two members' frozen description embeddings (L_CC's
  targets) and of their class-name embeddings.

Run from the repository root:
  python -m bench.order_probe probe [--backbone local-dir:DIR]
  python -m bench.order_probe train grouped --epochs 40
  python -m bench.order_probe margins --runs runs/synthetic-ablation/e60-adapter.up_init-zero/MSTA-plus-L_CC/seed1
  python -m bench.order_probe descriptions [--backbone local-dir:DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from bench.synthetic_ablation import RECIPE, score
from msta_cli.core.checkpoint import model_from_checkpoint
from msta_cli.core.config import Config, load_config
from msta_cli.core.data.dataset import VideoClipDataset
from msta_cli.core.model import create_model
from msta_cli.core.synthetic import stills
from msta_cli.core.synthetic.pretraining import to_tensor
from msta_cli.core.synthetic.renderer import ROTATIONAL_SYMMETRY, draw_frame
from msta_cli.core.synthetic.vocabulary import POSITIONS, SHAPES
from msta_cli.core.synthetic.dataset import SyntheticOptions, video_seed
from msta_cli.core.synthetic.world import (
    DIRECTION_PAIRS, VIDEO_SHAPES, ActionClass, descriptions, direction_pair_accuracy, render_clip,
)
from msta_cli.core.training.distributed import Distributed
from msta_cli.core.training.run_directory import start_run_directory
from msta_cli.core.training.trainer import train_run
from msta_cli.core.training.training_data import load_training_data


def write_paired_subset(world: Path, out: Path) -> None:
    """A prepared-layout folder over the world's videos with only the time-reversal-paired classes."""
    labels = pd.read_csv(world / "labels.csv")
    kept = labels[~labels["name"].str.contains("blinking")].reset_index(drop=True)
    new_id = {old: new for new, old in enumerate(kept["id"])}
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": range(len(kept)), "name": kept["name"]}).to_csv(out / "labels.csv", index=False)
    splits = {}
    for split in ("train", "test"):
        rows = pd.read_csv(world / f"{split}.csv")
        rows = rows[rows["label"].isin(new_id)].assign(label=lambda frame: frame["label"].map(new_id))
        rows.to_csv(out / f"{split}.csv", index=False)
        splits[split] = {"file": f"{split}.csv", "videos": len(rows), "excluded": 0}
    shutil.copy(world / "descriptions.json", out / "descriptions.json")
    meta = yaml.safe_load((world / "dataset.yaml").read_text()) | {"num_classes": len(kept), "splits": splits, "lists": {}}
    (out / "dataset.yaml").write_text(yaml.safe_dump(meta))


def paired_config(subset: Path, overrides: list[str]) -> Config:
    return load_config(RECIPE, [
        f"data.root={subset}", f"loss.descriptions.file={subset / 'descriptions.json'}", "data.train_split=train.csv",
        "data.train_labels=labels.csv", "protocol.kind=supervised", "adapter.up_init=zero",
        "eval.sets=[{name: base, split: test.csv, labels: labels.csv, root: null, views: null}]", *overrides,
    ])


def linear_probe(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, classes: int) -> np.ndarray:
    """Test-set class probabilities of a standardised, lightly regularised linear classifier."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mean) / std, (test - mean) / std
    layer = torch.nn.Linear(train.shape[1], classes)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(500):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(layer(train), train_labels).backward()
        optimizer.step()
    with torch.no_grad():
        return layer(test).softmax(-1).numpy()


def frame_embeddings(model, subset: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(videos, frames, dim) frozen image embeddings of every frame, and the labels."""
    rows = pd.read_csv(subset / f"{split}.csv")
    video_root = yaml.safe_load((subset / "dataset.yaml").read_text())["video_root"]
    dataset = VideoClipDataset(rows, video_root, 8, mode="test")
    mean = torch.tensor(model.backbone.preprocessing.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.backbone.preprocessing.std).view(1, 3, 1, 1)
    embeddings = []
    with torch.no_grad():
        for index in range(len(dataset)):
            frames = dataset[index].video[0].permute(0, 3, 1, 2).float() / 255
            embeddings.append(model.backbone.clip.encode_image((frames - mean) / std))
    return torch.stack(embeddings), torch.tensor(rows["label"].to_numpy())


def probe(subset: Path, overrides: list[str]) -> list[str]:
    config = paired_config(subset, overrides)
    model = create_model(config, "cpu", adapters=False).eval()
    names = pd.read_csv(subset / "labels.csv")["name"].tolist()
    (train, train_labels), (test, test_labels) = frame_embeddings(model, subset, "train"), frame_embeddings(model, subset, "test")
    pairs = [f"{first} / {second}" for first, second in DIRECTION_PAIRS]
    lines = ["| frozen per-frame embeddings, linear probe | test top-1 | test direction pairs | " + " | ".join(pairs) + " |",
             "|---" * (3 + len(pairs)) + "|"]
    for name, view in [("mean of the frames (MSTA's pooling)", lambda x: x.mean(1)),
                       ("frames concatenated in order", lambda x: x.flatten(1)),
                       ("last frame minus first", lambda x: x[:, -1] - x[:, 0])]:
        probabilities = linear_probe(view(train), train_labels, view(test), len(names))
        outputs = (names, test_labels.numpy(), probabilities)
        top1 = 100 * float((probabilities.argmax(1) == test_labels.numpy()).mean())
        per_pair = " | ".join(f"{direction_pair_accuracy(*outputs, pair):.1f}" for pair in DIRECTION_PAIRS)
        lines.append(f"| {name} | {top1:.1f} | {direction_pair_accuracy(*outputs):.1f} | {per_pair} |")
    return lines + [""] + stills_probe(model)


def stills_probe(model) -> list[str]:
    """Linear probes of position, shape and angle on the frozen embeddings of captioned stills."""
    rng = np.random.default_rng(0)
    captions = [stills.random_caption(rng) for _ in range(3000)]
    states = [stills.still_state(caption, rng) for caption in captions]
    with torch.no_grad():
        images = to_tensor(np.stack([draw_frame(state, stills.IMAGE_SIZE) for state in states]))
        embeddings = torch.cat([model.backbone.clip.encode_image(chunk) for chunk in images.split(500)])
    lines = ["| stills (2,400 train / 600 test), linear probe | test accuracy | chance |", "|---|---|---|"]
    for attribute, values in (("position", POSITIONS), ("shape", SHAPES)):
        labels = torch.tensor([list(values).index(getattr(caption, attribute)) for caption in captions])
        probabilities = linear_probe(embeddings[:2400], labels[:2400], embeddings[2400:], len(values))
        accuracy = 100 * float((probabilities.argmax(1) == labels[2400:].numpy()).mean())
        lines.append(f"| {attribute} | {accuracy:.1f} | {100 / len(values):.1f} |")
    # No caption names an angle: least-squares read-out of (cos, sin) of symmetry x angle, the
    # pose up to the shape's own symmetry; circles left out.
    symmetry = torch.tensor([float(ROTATIONAL_SYMMETRY[state.shape]) for state in states])
    turned = torch.deg2rad(torch.tensor([state.angle for state in states])) * symmetry
    target = torch.stack([turned.cos(), turned.sin()], dim=1)
    features = torch.cat([embeddings, torch.ones(len(states), 1)], dim=1)
    shaped, first = symmetry > 0, torch.arange(len(states)) < 2400
    weights = torch.linalg.lstsq(features[shaped & first], target[shaped & first]).solution
    test = shaped & ~first
    predicted = features[test] @ weights
    r2 = 1 - (predicted - target[test]).square().sum() / (target[test] - target[test].mean(0)).square().sum()
    wrapped = torch.remainder(torch.atan2(predicted[:, 1], predicted[:, 0]) - turned[test], 2 * math.pi)
    error = torch.rad2deg(torch.minimum(wrapped, 2 * math.pi - wrapped) / symmetry[test])
    lines += ["", "| stills, angle (linear read-out, circles left out) | test R^2 | median error (degrees) |",
              "|---|---|---|", f"| cos, sin of symmetry x angle | {r2:.2f} | {error.median():.1f} |"]
    return lines


def train(subset: Path, temporal: str, epochs: int, overrides: list[str], out: Path) -> list[str]:
    config = paired_config(subset, [f"adapter.temporal={temporal}", f"optim.epochs={epochs}", *overrides])
    device = torch.device("cpu")
    directory = out / f"{temporal}-e{epochs}"
    start_run_directory(directory, config, 1, device)
    started = time.perf_counter()
    outcome = train_run(config, directory, load_training_data(config), Distributed(), device)
    row = {"temporal": temporal, "steps": outcome.progress.global_step, **score(outcome.model, config, device),
           "seconds": round(time.perf_counter() - started, 1)}
    return [json.dumps(row)]


def margins(runs: list[Path]) -> list[str]:
    """Per pair: the order margin (logit margin of a clip minus that of its reverse), how often its
    sign is right, and the clip-to-clip spread of the margin that the pair's shared frames cause."""
    options = SyntheticOptions(train_per_class=32, test_per_class=16)
    lines = ["| run | pair | cos(class, partner) | 1 - cos(clip, reversed) | order margin | right sign | clip-to-clip spread |",
             "|---|---|---|---|---|---|---|"]
    for run in runs:
        model = model_from_checkpoint(run / "checkpoints" / "last").eval()
        mean = torch.tensor(model.backbone.preprocessing.mean).view(1, 1, 3, 1, 1)
        std = torch.tensor(model.backbone.preprocessing.std).view(1, 1, 3, 1, 1)
        for first, second in DIRECTION_PAIRS:
            distance, order, spread, class_cosines = [], [], [], []
            for shape in VIDEO_SHAPES:
                action, partner = ActionClass(shape, first), ActionClass(shape, second)
                seeds = [video_seed(options, action, "test", index) for index in range(options.test_per_class)]
                clips = torch.from_numpy(np.stack([render_clip(action, seed) for seed in seeds]))
                clips = (clips.permute(0, 1, 4, 2, 3).float() / 255 - mean) / std
                with torch.no_grad():
                    forward, backward = model.encode_video(clips), model.encode_video(clips.flip(1))
                    names = model.class_embeddings([action.name, partner.name])
                # The margin's scale: the closer the two adapted class embeddings, the less any
                # difference between video embeddings can separate them (L_CC pulls both toward
                # nearly the same description embeddings).
                class_cosines.append(float(names[0] @ names[1]))
                direction = model.backbone.logit_scale() * (names[0] - names[1])
                margin = forward @ direction
                distance.append(1 - (forward * backward).sum(1))
                order.append(margin - backward @ direction)
                spread.append((margin - margin.mean()).abs())
            order_margin = torch.cat(order)
            # Without a temporal path a clip and its reverse embed identically: no sign to count.
            signs = f"{100 * (order_margin > 0).float().mean():.0f}%" if order_margin.abs().max() > 1e-4 else "-"
            lines.append(f"| {run} | {first} / {second} | {np.mean(class_cosines):.4f} | {torch.cat(distance).mean():.4f} | "
                         f"{order_margin.mean():+.3f} | "
                         f"{signs} | {torch.cat(spread).mean():.3f} |")
    return lines


def description_similarity(overrides: list[str]) -> list[str]:
    model = create_model(load_config(RECIPE, overrides), "cpu", adapters=False).eval()
    lines = ["| pair | spatial descriptions | temporal descriptions | class names |", "|---|---|---|---|"]
    for first, second in DIRECTION_PAIRS:
        action, partner = ActionClass("square", first), ActionClass("square", second)
        cosines = []
        for kind in ("spatial", "temporal"):
            embeddings = model.description_embeddings([descriptions(action)[kind], descriptions(partner)[kind]])
            cosines.append(float(embeddings[0] @ embeddings[1]))
        with torch.no_grad():
            names = model.class_embeddings([action.name, partner.name])
        cosines.append(float(names[0] @ names[1]))
        lines.append(f"| {first} / {second} | " + " | ".join(f"{value:.4f}" for value in cosines) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["probe", "train", "margins", "descriptions"])
    parser.add_argument("temporal", nargs="?", default="grouped", choices=["grouped", "depthwise", "none"])
    parser.add_argument("--world", type=Path, default=Path("data/synthetic-bench"))
    parser.add_argument("--backbone", default=None, help="e.g. local-dir:DIR (default: the recipe's msta-tiny)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/order-probe"))
    parser.add_argument("--runs", type=Path, nargs="+", default=[], help="margins: run folders with checkpoints/last")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    overrides = [f"model.backbone={args.backbone}"] if args.backbone else []
    if args.what in ("margins", "descriptions"):
        lines = margins(args.runs) if args.what == "margins" else description_similarity(overrides)
    else:
        subset = args.out / "paired-classes"
        if not (subset / "dataset.yaml").is_file():
            write_paired_subset(args.world, subset)
        lines = probe(subset, overrides) if args.what == "probe" else train(subset, args.temporal, args.epochs, overrides, args.out)
    print(f"machine: {platform.machine()} CPU, {args.threads} thread(s), torch {torch.__version__}; "
          f"backbone {args.backbone or 'msta-tiny'}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
