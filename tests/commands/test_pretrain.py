import json

import pytest
from typer.testing import CliRunner

from msta_cli.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--position-share", "0.8", "--shape-share", "0.5"], "add up to at most 1"),
        (["--device", "tpu"], "--device must be cpu or cuda"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--position-loss", "-1"], "--position-loss must be at least 0"),
        (["--orientation-loss", "-0.5"], "--orientation-loss must be at least 0"),
    ],
)
def test_bad_options_exit_2_with_the_reason(tmp_path, options, message):
    result = runner.invoke(app, ["pretrain-tiny", str(tmp_path / "out"), *options])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out").exists()


def test_batch_composition_options_reach_the_summary(tmp_path):
    result = runner.invoke(app, [
        "pretrain-tiny", str(tmp_path / "out"), "--steps", "1", "--batch-size", "8",
        "--position-share", "0.25", "--shape-share", "0.5", "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    options = json.loads((tmp_path / "out" / "pretraining.json").read_text())["options"]
    assert (options["position_share"], options["shape_share"], options["device"]) == (0.25, 0.5, "cpu")
