import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msta_cli.cli import app

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
runner = CliRunner()


def _recipe(tmp_path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("recipe", "trainable"), [("fewshot.yaml", 1_744_000), ("base2novel.yaml", 8_712_192)])
def test_dry_run_json_of_shipped_recipes_has_the_exact_counts(recipe, trainable):
    result = runner.invoke(app, ["train", str(RECIPES / recipe), "model.pretrained=none", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    parameters = payload["parameters"]
    assert parameters["trainable"] == trainable
    assert parameters["trainable_percent"] == pytest.approx(100 * trainable / parameters["total"], abs=1e-3)
    assert payload["config"]["model"]["pretrained"] == "none"
    assert payload["preprocessing"]["size"] == 224


def test_dry_run_table_shows_config_and_parameter_split(tmp_path, tiny_backbone_name):
    recipe = _recipe(tmp_path, f"model:\n  backbone: {tiny_backbone_name}\nadapter:\n  bottleneck: 16\n  blocks: [2, 2]\n")
    result = runner.invoke(app, ["train", recipe, "--dry-run"], terminal_width=120)
    assert result.exit_code == 0, result.output
    per_block = 64 * 16 + 16 + 16 * 64 + 64 + 16 * 16 + 16 + 64 * 16 + 16 + 16 * 64 + 64 + 3 * 64 + 64
    assert f"{per_block:,}" in result.stdout
    for part in ("text_down", "shared", "temporal_up", "trainable", "frozen backbone", "bottleneck: 16"):
        assert part in result.stdout


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("adapter:\n  blocks: [1, 2\n", [], "invalid YAML"),
        ("adapter:\n  botleneck: 8\n", [], "unknown key 'adapter.botleneck'"),
        ("adapter:\n  bottleneck: eight\n", [], "'adapter.bottleneck' must be an integer"),
        ("", ["adapter.scale=big"], "'adapter.scale' must be a number"),
    ],
)
def test_bad_recipes_exit_2_with_a_message_and_no_traceback(tmp_path, text, overrides, message):
    result = runner.invoke(app, ["train", _recipe(tmp_path, text), *overrides, "--dry-run"])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_training_without_dry_run_is_refused_clearly(tmp_path):
    result = runner.invoke(app, ["train", _recipe(tmp_path, "")])
    assert result.exit_code == 2 and "--dry-run" in result.stderr


def test_module_entry_point_lists_commands():
    result = subprocess.run([sys.executable, "-m", "msta_cli", "--help"], capture_output=True, text=True, check=True)
    assert "train" in result.stdout
