"""Draw one shape per frame on a black background, deterministically, with anti-aliasing.

Frames are drawn at twice the size and box-filtered down: cheap anti-aliasing, so small moves
and rotations change pixels smoothly instead of flickering between rasterisations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 2
_STAR_INNER = 0.45
# Turning a shape by 360 / n degrees leaves it unchanged; 0: every turn does (circles).
ROTATIONAL_SYMMETRY = {"circle": 0, "square": 4, "triangle": 3, "star": 5, "cross": 4}
_CROSS_HALF_WIDTH = 0.33


@dataclass(frozen=True)
class FrameState:
    """Where and how the shape is drawn in one frame; lengths in output pixels, angle clockwise in degrees."""

    shape: str
    colour: tuple[int, int, int]
    x: float
    y: float
    radius: float
    angle: float = 0.0
    visible: bool = True


def _outline(shape: str, radius: float) -> list[tuple[float, float]]:
    """Polygon (r, theta) points of `shape` at angle 0, theta counter-clockwise in degrees."""
    if shape == "square":
        return [(radius, 45 + 90 * k) for k in range(4)]
    if shape == "triangle":
        return [(radius, 90 + 120 * k) for k in range(3)]
    if shape == "star":
        return [(radius if k % 2 == 0 else radius * _STAR_INNER, 90 + 36 * k) for k in range(10)]
    if shape == "cross":
        half = radius * _CROSS_HALF_WIDTH
        points = []
        for k in range(4):
            # One arm pointing along 90k degrees: its two outer corners and the inner corner after it.
            for along, across in ((radius, -half), (radius, half), (half, half)):
                angle = math.radians(90 * k)
                px = along * math.cos(angle) - across * math.sin(angle)
                py = along * math.sin(angle) + across * math.cos(angle)
                points.append((math.hypot(px, py), math.degrees(math.atan2(py, px))))
        return points
    raise ValueError(f"unknown shape {shape!r}")


def draw_frame(state: FrameState, size: int) -> np.ndarray:
    """One (size, size, 3) uint8 frame."""
    scale = SUPERSAMPLE
    image = Image.new("RGB", (size * scale, size * scale))
    if state.visible:
        draw = ImageDraw.Draw(image)
        cx, cy, radius = state.x * scale, state.y * scale, state.radius * scale
        if state.shape == "circle":
            r = radius * 0.85
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=state.colour)
        else:
            points = []
            for r, theta in _outline(state.shape, radius):
                angle = math.radians(theta - state.angle)
                points.append((cx + r * math.cos(angle), cy - r * math.sin(angle)))
            draw.polygon(points, fill=state.colour)
    return np.asarray(image.resize((size, size), Image.Resampling.BOX))


def draw_clip(states: list[FrameState], size: int) -> np.ndarray:
    """(frames, size, size, 3) uint8."""
    return np.stack([draw_frame(state, size) for state in states])
