"""Test-wide settings: never wait on a hub download."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
