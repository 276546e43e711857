"""Accuracy metrics and per-video result tables computed from averaged class probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class SetScores:
    """One test set's outcome: every listed video is either scored or failed, exactly once."""

    name: str
    class_names: list[str]
    paths: list[str]
    labels: np.ndarray
    probabilities: np.ndarray
    failures: list[tuple[str, str, int]]  # (path, reason, label)

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def ranked(self, k: int) -> np.ndarray:
        """Class ids by falling probability; ties keep the lower id first, as argmax does, so a
        video's rank-1 class is its prediction in every table."""
        return np.argsort(-self.probabilities, axis=1, kind="stable")[:, : min(k, len(self.class_names))]

    def top_k(self, k: int) -> float:
        ranked = self.ranked(k)
        return 100.0 * float((ranked == self.labels[:, None]).any(axis=1).mean()) if len(self.labels) else float("nan")

    def mean_class_accuracy(self) -> float:
        """Mean over classes with a scored video, so class imbalance cannot hide a weak class."""
        per_class = self.per_class()
        present = per_class[per_class["scored"] > 0]
        return float(present["accuracy"].mean()) if len(present) else float("nan")

    def unscored_classes(self) -> list[str]:
        """Classes with test videos none of which could be scored: no accuracy, and left out of
        the mean over classes, which a reader of the table must be told."""
        per_class = self.per_class()
        return per_class[(per_class["videos"] > 0) & (per_class["scored"] == 0)]["name"].tolist()

    def summary(self) -> dict:
        return {
            "split": self.name,
            "top1": round(self.top_k(1), 2),
            # with 5 classes or fewer every video is in its top 5: 100% would pass for a result
            "top5": round(self.top_k(5), 2) if len(self.class_names) > 5 else float("nan"),
            "mean_class": round(self.mean_class_accuracy(), 2),
            "videos": len(self.paths) + len(self.failures),
            "scored": len(self.paths),
            "failed": len(self.failures),
        }

    def per_class(self) -> pd.DataFrame:
        """Each class's listed, scored and failed videos, and its accuracy over the scored ones."""
        correct = self.predictions == self.labels
        classes = np.arange(len(self.class_names))
        scored = np.bincount(self.labels, minlength=len(classes))
        failed = np.bincount(np.array([label for *_, label in self.failures], dtype=np.int64), minlength=len(classes))
        hits = np.bincount(self.labels[correct], minlength=len(classes))
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = np.where(scored > 0, 100.0 * hits / np.maximum(scored, 1), np.nan)
        return pd.DataFrame({
            "id": classes, "name": self.class_names, "videos": scored + failed, "scored": scored,
            "failed": failed, "correct": hits, "accuracy": accuracy.round(2),
        })

    def confusion(self) -> pd.DataFrame:
        """Rows: true class, columns: predicted class, cells: video counts."""
        size = len(self.class_names)
        counts = np.bincount(self.labels * size + self.predictions, minlength=size * size).reshape(size, size)
        return pd.DataFrame(counts, index=pd.Index(self.class_names, name="true"), columns=self.class_names)

    def predictions_table(self, k: int = 5) -> pd.DataFrame:
        """Per video: label, top-k class names and scores, so any number can be recomputed; a failed
        video keeps its label, so the classes that lost videos show."""
        ranked = self.ranked(k)
        k = ranked.shape[1]
        table = pd.DataFrame({"path": self.paths, "label": self.labels, "label_name": [self.class_names[i] for i in self.labels]})
        table["correct"] = self.predictions == self.labels
        for rank in range(k):
            table[f"top{rank + 1}"] = [self.class_names[i] for i in ranked[:, rank]]
            table[f"score{rank + 1}"] = np.take_along_axis(self.probabilities, ranked[:, rank : rank + 1], axis=1)[:, 0].round(5)
        if not self.failures:
            return table
        paths, reasons, labels = zip(*self.failures)
        failed = pd.DataFrame({"path": paths, "label": labels, "label_name": [self.class_names[i] for i in labels], "error": reasons})
        table = pd.concat([table, failed], ignore_index=True)
        return table.astype({"label": "int64", "correct": "boolean"})


def harmonic_mean(base: float, novel: float) -> float:
    return 2 * base * novel / (base + novel) if base + novel else 0.0
