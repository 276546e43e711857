"""What a `msta prepare` run was asked to do."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PrepareOptions:
    """The inputs of one run; the defaults are the command's defaults."""

    dataset: str
    source: Path
    out: Path
    check: bool = True
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    seed: int = 0
    test_fraction: float = 0.2
    vifi_dir: Path | None = None
    k400_labels: Path | None = None
    download: bool = False
    sha256: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)  # mirrors --download fetches from
