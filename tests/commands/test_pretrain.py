import json
import os

import pytest
from typer.testing import CliRunner

from msta_cli.cli import app

runner = CliRunner()
# Were the checks missing, the smallest run keeps a test that trains short.
SMALLEST = ["--steps", "1", "--batch-size", "2"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--position-share", "0.8", "--shape-share", "0.5"], "add up to at most 1"),
        (["--device", "tpu"], "--device must be cpu or cuda"),
        (["--steps", "0"], "--steps must be at least 1; got 0"),
        (["--batch-size", "1"], "--batch-size must be at least 2; got 1"),
        (["--position-loss", "-1"], "--position-loss must be at least 0"),
        (["--orientation-loss", "-0.5"], "--orientation-loss must be at least 0"),
        (["--position-loss", "nan"], "--position-loss must be at least 0 and finite; got nan"),
        (["--orientation-loss", "inf"], "--orientation-loss must be at least 0 and finite; got inf"),
        (["--threads", "0"], f"--threads must be at least 1 and at most {os.cpu_count()} (this machine's CPUs); got 0"),
        (["--threads", "-1"], "--threads must be at least 1"),
        (["--threads", "100000"], "--threads must be at least 1 and at most"),
        (["--seed", "-1"], "--seed must be at least 0 and at most 18446744073709551615; got -1"),
        (["--seed", str(2**64)], "--seed must be at least 0"),
        (["--lr", "-1"], "--lr must be greater than 0 and at most 1; got -1.0"),
        (["--lr", "0"], "--lr must be greater than 0"),
        (["--lr", "nan"], "--lr must be greater than 0 and at most 1; got nan"),
        (["--lr", "inf"], "--lr must be greater than 0 and at most 1; got inf"),
        (["--lr", "1e39"], "--lr must be greater than 0 and at most 1"),
        (["--position-share", "nan"], "--position-share must be at least 0 and at most 1; got nan"),
        (["--shape-share", "-0.1"], "--shape-share must be at least 0 and at most 1; got -0.1"),
        (["--shape-share", "inf"], "--shape-share must be at least 0 and at most 1; got inf"),
    ],
)
def test_bad_options_exit_2_with_the_option_and_its_range_before_training(tmp_path, options, message):
    result = runner.invoke(app, ["pretrain-tiny", str(tmp_path / "out"), *SMALLEST, *options])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and "step 1" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("afile", "OUT {tmp}/afile: is a file, not a folder"),
        ("afile/sub", "OUT {tmp}/afile/sub: {tmp}/afile is a file, not a folder"),
        ("/proc/msta-tiny", "OUT /proc/msta-tiny: cannot write in /proc"),
        ("/sys/kernel", "OUT /sys/kernel: cannot write in /sys/kernel"),
    ],
)
def test_an_out_that_cannot_be_written_exits_2_before_training(tmp_path, out, message):
    (tmp_path / "afile").write_text("")
    target = out if out.startswith("/") else str(tmp_path / out)
    result = runner.invoke(app, ["pretrain-tiny", target, *SMALLEST])
    assert result.exit_code == 2 and message.format(tmp=tmp_path) in result.output, result.output
    assert "step 1" not in result.output
    assert (tmp_path / "afile").read_text() == ""


def test_a_loss_that_stops_being_finite_exits_1_and_writes_nothing(tmp_path):
    result = runner.invoke(app, ["pretrain-tiny", str(tmp_path / "out"), *SMALLEST, "--position-loss", "1e39"])
    assert result.exit_code == 1, result.output
    assert "training diverged at step 1: the loss is inf; nothing was written" in result.output
    assert not (tmp_path / "out").exists()


def test_help_gives_the_readme_time_for_one_cpu_thread():
    words = " ".join(word for word in runner.invoke(app, ["pretrain-tiny", "--help"]).output.split() if word != "│")
    assert "17 minutes on one CPU thread" in words and "half an hour" not in words


def test_batch_composition_options_reach_the_summary(tmp_path):
    result = runner.invoke(app, [
        "pretrain-tiny", str(tmp_path / "out"), "--steps", "1", "--batch-size", "8",
        "--position-share", "0.25", "--shape-share", "0.5", "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    options = json.loads((tmp_path / "out" / "pretraining.json").read_text())["options"]
    assert (options["position_share"], options["shape_share"], options["device"]) == (0.25, 0.5, "cpu")
