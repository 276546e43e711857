"""Predict many videos: decode test views in loader workers, score them in batches, keep going
past bad files (each becomes a `VideoFailure` with the reason)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from msta_cli.core.data.dataset import VideoClipDataset, VideoFailure, make_loader
from msta_cli.core.inference.predictor import Predictor
from msta_cli.core.inference.views import Views, test_transform, top_k, view_probabilities


@dataclass(frozen=True)
class Prediction:
    """A video's top-k (label, probability) pairs, best first."""

    path: str
    top: list[tuple[str, float]]


def predict_videos(
    predictor: Predictor,
    paths: Sequence[str | Path],
    views: Views = Views(1, 1),
    k: int = 5,
    batch_size: int = 8,
    workers: int = 0,
    backend: str = "auto",
) -> Iterator[Prediction | VideoFailure]:
    """One result per path, in input order; `batch_size` videos (x views clips) per forward pass."""
    split = pd.DataFrame({"path": [str(path) for path in paths], "label": 0})
    dataset = VideoClipDataset(
        split,
        video_root="",
        num_frames=predictor.sampling.num_frames,
        mode="test",
        clips=views.clips,
        sampling=predictor.sampling.mode,
        stride=predictor.sampling.dense_stride,
        backend=backend,
        max_short_side=predictor.preprocessing.size,
    )
    order = {path: index for index, path in enumerate(dataset.paths)}
    transform = test_transform(predictor, views)
    for batch in make_loader(dataset, batch_size, workers):
        results: list[Prediction | VideoFailure] = list(batch.failures)
        if len(batch):
            probabilities = view_probabilities(predictor, transform(batch.videos, batch.sizes))
            results += [Prediction(path, top_k(p, predictor.labels, k)) for path, p in zip(batch.paths, probabilities)]
        yield from sorted(results, key=lambda result: order[result.path])
