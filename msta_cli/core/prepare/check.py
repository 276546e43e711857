"""Open every video once, in parallel, and say which ones a training run could not read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from msta_cli.core.data.decoding import VideoError, open_video
from msta_cli.core.data.sampling import test_clip_indices
from msta_cli.core.prepare.progress import Progress

CHECK_SEGMENTS = 8  # TSN's usual clip length: the check decodes its first and last segment centres
CHUNK_PER_WORKER = 64


def check_video(path: Path) -> str | None:
    """None when the video opens, has frames and its first and last sampled frames decode; else why not."""
    try:
        with open_video(path) as video:
            centres = test_clip_indices(video.num_frames, CHECK_SEGMENTS, 1)[0]
            video.get_batch([centres[0], centres[-1]])
    except VideoError as error:
        return error.reason.replace(str(path), path.name)  # problems.csv names the video already
    except Exception as error:  # a decoder failing in an unforeseen way on one file must not stop the check
        return f"{type(error).__name__}: {error}"
    return None


def check_videos(root: Path, paths: list[str], workers: int, progress: Progress) -> dict[str, str]:
    """The reason for every path (relative to `root`) that failed the check.

    Threads, since the decoders release the GIL; paths go to the pool in chunks, so a
    Kinetics-sized list never holds hundreds of thousands of pending futures.
    """
    failures: dict[str, str] = {}
    progress("check videos", 0, len(paths))
    chunk = CHUNK_PER_WORKER * max(1, workers)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(paths), chunk):
            batch = paths[start : start + chunk]
            reasons = pool.map(check_video, [root / path for path in batch])
            for path, reason in zip(batch, reasons, strict=True):
                if reason is not None:
                    failures[path] = reason
            progress("check videos", start + len(batch), len(paths))
    return dict(sorted(failures.items()))
