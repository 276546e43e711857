"""`msta prepare`: turn a public dataset (or a folder of videos) into checked split lists.

One module per concept: a reader per official layout (hmdb51, ucf101, kinetics, ssv2, folder),
the ViFi-CLIP list import (vifi), the protocols (base-to-novel, few-shot, zero-shot), the video
index and check, the archive extraction and download, and the atomic writer; `pipeline`
runs them in order.
"""

from msta_cli.core.prepare.datasets import DATASETS
from msta_cli.core.prepare.options import PrepareOptions
from msta_cli.core.prepare.pipeline import PrepareReport, prepare

__all__ = ["DATASETS", "PrepareOptions", "PrepareReport", "prepare"]
