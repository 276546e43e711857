"""Fixtures for the prepare tests: tiny template videos, encoded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.prepare.layouts import template_videos


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return template_videos(tmp_path_factory.mktemp("templates"))
