"""Machine-readable results of `msta predict`: CSV and JSON for predictions and timelines.

Probabilities are written with 6 decimals in CSV and as plain floats in JSON; failures go in
the JSON (`failures`) and are left out of the CSV, whose rows are all results.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Sequence

from msta_cli.core.data.dataset import VideoFailure
from msta_cli.core.inference.views import top_k

if TYPE_CHECKING:  # timeline imports this module to write its windows CSV
    from msta_cli.core.inference.batch import Prediction
    from msta_cli.core.inference.timeline import Timeline

FORMATS = ("table", "csv", "json")


def predictions_csv(predictions: Sequence[Prediction]) -> str:
    """`path,rank,label,probability`, one row per video and rank."""
    rows = [
        [prediction.path, rank, label, f"{probability:.6f}"]
        for prediction in predictions
        for rank, (label, probability) in enumerate(prediction.top, start=1)
    ]
    return _csv(["path", "rank", "label", "probability"], rows)


def predictions_json(predictions: Sequence[Prediction], failures: Sequence[VideoFailure]) -> str:
    payload = {
        "predictions": [
            {"path": p.path, "top": [{"label": label, "probability": probability} for label, probability in p.top]}
            for p in predictions
        ],
        "failures": _failures(failures),
    }
    return json.dumps(payload, indent=2) + "\n"


def segments_csv(timelines: Sequence[Timeline]) -> str:
    """`path,segment,start,end,label,score,first_window,last_window`, one row per segment."""
    rows = [
        [t.path, index, f"{s.start:.3f}", f"{s.end:.3f}", s.label, f"{s.score:.6f}", s.first_window, s.last_window]
        for t in timelines
        for index, s in enumerate(t.segments)
    ]
    return _csv(["path", "segment", "start", "end", "label", "score", "first_window", "last_window"], rows)


def segments_json(timelines: Sequence[Timeline], outputs: dict[str, list[str]], failures: Sequence[VideoFailure]) -> str:
    """Segments per video, with the files written for it (`outputs`, keyed by video path)."""
    payload = {
        "timelines": [
            {
                "path": t.path,
                "duration": t.duration,
                "windows": len(t.windows),
                "files": outputs.get(t.path, []),
                "segments": [
                    {"start": s.start, "end": s.end, "label": s.label, "score": s.score,
                     "first_window": s.first_window, "last_window": s.last_window}
                    for s in t.segments
                ],
            }
            for t in timelines
        ],
        "failures": _failures(failures),
    }
    return json.dumps(payload, indent=2) + "\n"


def windows_csv(timeline: Timeline, k: int) -> str:
    """One row per window: `window,start,end,label_1,probability_1,...` best first."""
    k = min(k, len(timeline.labels))
    ranks = [column for rank in range(1, k + 1) for column in (f"label_{rank}", f"probability_{rank}")]
    rows = [
        [index, f"{window.start:.3f}", f"{window.end:.3f}",
         *(cell for label, p in top_k(window.probabilities, timeline.labels, k) for cell in (label, f"{p:.6f}"))]
        for index, window in enumerate(timeline.windows)
    ]
    return _csv(["window", "start", "end", *ranks], rows)


def _failures(failures: Sequence[VideoFailure]) -> list[dict]:
    return [{"path": failure.path, "reason": failure.reason} for failure in failures]


def _csv(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
