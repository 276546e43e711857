"""Every benchmark still runs end to end, on inputs small enough for CI; the numbers are not checked.

Benchmarks are run by hand, rarely, so an API change that breaks one would otherwise go
unnoticed until someone needs it (bench/predict_latency.py once failed that way).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SMALL_RUNS = {
    "loader_throughput": ["--videos", "2", "--frames", "12", "--clips", "4", "--batch-size", "2", "--workers", "0",
                          "--rounds", "1", "--backends", "pyav", "decord"],
    "decode_speed": ["--videos", "1", "--rounds", "1"],
    "loader_breakdown": ["--videos", "2", "--workers", "1", "--processes", "2", "--clips", "4", "--batch-size", "2"],
    "temporal_conv": ["--clips", "1", "--frames", "2", "--repeats", "1"],
    "augmentation": ["--batch", "2", "--frames", "2", "--repeats", "1"],
    "train_throughput": ["--frames", "2", "--batch", "1", "--steps", "1", "--warmup", "0"],
    "predict_latency": ["--bottleneck", "16", "--blocks", "1", "2", "--videos", "2", "--batch-size", "2",
                        "--workers", "0", "--repeats", "1"],
}


@pytest.mark.parametrize("bench", SMALL_RUNS)
def test_benchmark_runs_and_prints_its_table(bench, tiny_backbone_name):
    if bench in ("loader_throughput", "loader_breakdown"):
        pytest.importorskip("cv2")  # the bench extra, for the ViFi-CLIP-style baseline
    options = SMALL_RUNS[bench]
    if bench == "predict_latency":
        pytest.importorskip("onnxruntime")
        options = [*options, "--backbone", tiny_backbone_name]
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{bench}", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert len(table) >= 3, result.stdout  # header, separator and at least one row


@pytest.mark.parametrize("bench", sorted(path.stem for path in (ROOT / "bench").glob("*.py") if path.stem != "__init__"))
def test_every_benchmark_imports_and_answers_help(bench):
    """The benchmarks too slow for a small run (they train on the synthetic world) still import:
    an API moved under them cannot go unnoticed."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{bench}", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
