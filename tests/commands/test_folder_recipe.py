"""Your own classes end to end: `msta prepare folder`, `msta train recipes/folder.yaml`, `msta predict` with the run."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from msta_cli.cli import app
from tests.helpers.datasets import colour_clip, write_clip

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "folder.yaml"
runner = CliRunner()


def test_a_folder_of_class_folders_trains_with_the_shipped_recipe_and_predicts(tmp_path, tiny_backbone_name):
    rng = np.random.default_rng(0)
    source = tmp_path / "my-actions"
    for colour in ("red", "green", "blue"):
        for number in range(5):
            write_clip(source / colour / f"{number}.mp4", colour_clip(colour, rng))
    prepared = runner.invoke(app, ["prepare", "folder", str(source), "--out", str(tmp_path / "data"), "--test-fraction", "0.4"])
    assert prepared.exit_code == 0, prepared.output
    run = tmp_path / "run"
    tiny = [  # the recipe's keys, at the tiny model's size
        f"model.backbone={tiny_backbone_name}", "adapter.bottleneck=16", "adapter.blocks=[1, 2]", "data.num_frames=4",
        "data.input_size=32", "data.resize_short_side=36", "data.workers=0", "optim.epochs=1", "optim.warmup_epochs=0",
        "optim.batch_size=4", "optim.micro_batch_size=2", "eval.views=1x1",
    ]
    trained = runner.invoke(app, ["train", str(RECIPE), f"data.root={tmp_path / 'data'}", f"output_dir={run}", *tiny])
    assert trained.exit_code == 0, trained.output
    results = pd.read_csv(run / "results.csv").set_index("method")
    assert results.loc["MSTA", "videos"] == 6 and results.loc["zero-shot", "videos"] == 6  # 2 of each class's 5
    predicted = runner.invoke(app, ["predict", str(source / "red" / "0.mp4"), "--labels", str(tmp_path / "data" / "labels.csv"),
                                    "--model", str(run), "--format", "csv"])
    assert predicted.exit_code == 0, predicted.output
    ranked = pd.read_csv(io.StringIO(predicted.stdout))
    assert sorted(ranked["label"]) == ["blue", "green", "red"] and ranked["probability"].sum() == pytest.approx(1, abs=1e-3)
