"""Stage-1 data: captioned stills, this world's "web pre-training" (no motion words).

Parts of every batch come in hard-negative groups: stills that share everything but position
(random batches alone did not teach position in the prototype), or everything but shape (the
attribute msta-tiny learns slowest).
"""

from __future__ import annotations

import numpy as np

from msta_cli.core.synthetic.renderer import FrameState, draw_frame
from msta_cli.core.synthetic.vocabulary import COLOURS, POSITIONS, SHAPES, SIZES, Caption

IMAGE_SIZE = 64
SIZE_RADIUS = {"small": 6.5, "large": 11.5}
RADIUS_JITTER = 1.0
POSITION_JITTER = 3.0
COLOUR_JITTER = 20


def cell_centre(position: str, size: int = IMAGE_SIZE) -> tuple[float, float]:
    """Pixel centre of a 3 x 3 grid cell."""
    row, column = divmod(POSITIONS.index(position), 3)
    return (column + 0.5) * size / 3, (row + 0.5) * size / 3


def jittered_colour(name: str, rng: np.random.Generator) -> tuple[int, int, int]:
    base = np.array(COLOURS[name]) + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3)
    return tuple(int(v) for v in np.clip(base, 0, 255))


def still(caption: Caption, rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """A (size, size, 3) uint8 picture of `caption`, with jittered colour, size, place and angle."""
    return draw_frame(still_state(caption, rng, size), size)


def still_state(caption: Caption, rng: np.random.Generator, size: int = IMAGE_SIZE) -> FrameState:
    """The drawn state of `caption`'s still: its angle is not in the caption but some losses need it."""
    x, y = cell_centre(caption.position, size)
    return FrameState(
        shape=caption.shape,
        colour=jittered_colour(caption.colour, rng),
        x=x + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
        y=y + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
        radius=SIZE_RADIUS[caption.size] + rng.uniform(-RADIUS_JITTER, RADIUS_JITTER),
        angle=float(rng.uniform(0, 360)),
    )


def random_caption(rng: np.random.Generator) -> Caption:
    return Caption(
        shape=SHAPES[rng.integers(len(SHAPES))],
        colour=list(COLOURS)[rng.integers(len(COLOURS))],
        size=SIZES[rng.integers(len(SIZES))],
        position=POSITIONS[rng.integers(len(POSITIONS))],
    )


def _groups(rng: np.random.Generator, count: int, variants) -> list[Caption]:
    """`count` captions in groups: each group is `variants(anchor)` of one random anchor caption."""
    captions: list[Caption] = []
    while len(captions) < count:
        captions += variants(random_caption(rng))
    return captions[:count]


def batch(
    rng: np.random.Generator, count: int, position_share: float = 0.5, shape_share: float = 0.0, group: int = 8,
) -> tuple[np.ndarray, list[str], list[Caption], list[float]]:
    """`count` stills with sampled captions and their angles: hard-negative groups first, then random ones.

    A `position_share` of the batch comes in groups of `group` that differ only in position, then a
    `shape_share` in groups that differ only in shape (every shape once).
    """
    captions = _groups(rng, int(count * position_share), lambda anchor: [
        Caption(anchor.shape, anchor.colour, anchor.size, str(position))
        for position in rng.choice(POSITIONS, size=min(group, len(POSITIONS)), replace=False)
    ])
    captions += _groups(rng, int(count * shape_share), lambda anchor: [
        Caption(str(shape), anchor.colour, anchor.size, anchor.position) for shape in rng.permutation(SHAPES)
    ])
    captions += [random_caption(rng) for _ in range(count - len(captions))]
    states = [still_state(caption, rng) for caption in captions]
    images = np.stack([draw_frame(state, IMAGE_SIZE) for state in states])
    return images, [caption.text(rng) for caption in captions], captions, [state.angle for state in states]
