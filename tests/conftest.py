"""Test-wide settings: never wait on a hub download."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from msta_cli.core.config import AdapterConfig, Config
from msta_cli.core.model import MstaModel, create_model
from tests.helpers.models import write_tiny_clip


@pytest.fixture(scope="session")
def tiny_backbone_name(tmp_path_factory) -> str:
    return write_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture
def tiny_config(tiny_backbone_name) -> Config:
    config = Config()
    config.model.backbone = tiny_backbone_name
    config.adapter = AdapterConfig(bottleneck=16, blocks=[1, 2], scale=0.5)
    config.text.templates = ["a video of {}.", "a clip of {}."]
    return config


@pytest.fixture
def tiny_model(tiny_config) -> MstaModel:
    torch.manual_seed(0)
    return create_model(tiny_config)


@pytest.fixture(scope="session")
def colour_dataset(tmp_path_factory):
    """Three learnable classes, 6 training and 3 test videos each, in the prepared layout."""
    from tests.helpers.datasets import write_colour_dataset

    return write_colour_dataset(tmp_path_factory.mktemp("colours"), ["red", "green", "blue"], 6, 3)
