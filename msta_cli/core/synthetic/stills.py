"""Stage-1 data: captioned stills, this world's "web pre-training" (no motion words).

Half of every batch comes in groups that share shape, colour and size and differ only in
position: hard negatives that force both towers to encode where the shape is, which random
batches alone did not do in the prototype.
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
    x, y = cell_centre(caption.position, size)
    state = FrameState(
        shape=caption.shape,
        colour=jittered_colour(caption.colour, rng),
        x=x + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
        y=y + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
        radius=SIZE_RADIUS[caption.size] + rng.uniform(-RADIUS_JITTER, RADIUS_JITTER),
        angle=float(rng.uniform(0, 360)),
    )
    return draw_frame(state, size)


def random_caption(rng: np.random.Generator) -> Caption:
    return Caption(
        shape=SHAPES[rng.integers(len(SHAPES))],
        colour=list(COLOURS)[rng.integers(len(COLOURS))],
        size=SIZES[rng.integers(len(SIZES))],
        position=POSITIONS[rng.integers(len(POSITIONS))],
    )


def batch(rng: np.random.Generator, count: int, group: int = 8) -> tuple[np.ndarray, list[str], list[Caption]]:
    """`count` stills with sampled captions; the first half in position-only hard-negative groups."""
    captions: list[Caption] = []
    while len(captions) < count // 2:
        anchor = random_caption(rng)
        for position in rng.choice(POSITIONS, size=min(group, len(POSITIONS)), replace=False):
            captions.append(Caption(anchor.shape, anchor.colour, anchor.size, str(position)))
    captions = captions[: count // 2]
    captions += [random_caption(rng) for _ in range(count - len(captions))]
    images = np.stack([still(caption, rng) for caption in captions])
    return images, [caption.text(rng) for caption in captions], captions
