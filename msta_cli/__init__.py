"""msta: MSTA adapters for video-language CLIP models."""

__version__ = "0.1.0"
