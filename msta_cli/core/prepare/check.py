"""Open every video once, in parallel, and say which ones a training run could not read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from msta_cli.core.data.decoding import VideoError, open_video
from msta_cli.core.data.sampling import test_clip_indices
from msta_cli.core.prepare.progress import Progress

CHECK_SEGMENTS = 8  # TSN's usual clip length: the check decodes its first and last segment centres


def check_video(path: Path) -> str | None:
    """None when the video opens, has frames and its first and last sampled frames decode; else why not."""
    try:
        with open_video(path) as video:
            if video.num_frames < 1:
                return "no frames"
            centres = test_clip_indices(video.num_frames, CHECK_SEGMENTS, 1)[0]
            video.get_batch([centres[0], centres[-1]])
    except VideoError as error:
        return error.reason.replace(str(path), path.name)  # problems.csv names the video already
    except Exception as error:  # a decoder failing in an unforeseen way on one file must not stop the check
        return f"{type(error).__name__}: {error}"
    return None


def check_videos(root: Path, paths: list[str], workers: int, progress: Progress) -> dict[str, str]:
    """The reason for every path (relative to `root`) that failed the check; threads, since decoders release the GIL."""
    failures: dict[str, str] = {}
    progress("check videos", 0, len(paths))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(check_video, root / path): path for path in paths}
        for done, future in enumerate(as_completed(futures), start=1):
            reason = future.result()
            if reason is not None:
                failures[futures[future]] = reason
            progress("check videos", done, len(paths))
    return dict(sorted(failures.items()))
