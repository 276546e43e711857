"""Stage 2: the action classes of the synthetic world, their base/novel split, and their videos.

A class is a motion of a shape ("triangle rotating clockwise"). Each direction pair (left/right,
up/down, clockwise/counter-clockwise, growing/shrinking) is drawn once and the second member
is that same clip played backwards, so the two classes contain exactly the same frames and only
their order tells them apart. Circles are left out of the videos: their rotation is invisible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msta_cli.core.synthetic.renderer import FrameState, draw_clip
from msta_cli.core.synthetic.stills import IMAGE_SIZE, jittered_colour
from msta_cli.core.synthetic.vocabulary import COLOURS, POSITIONS

VIDEO_SHAPES = ("square", "triangle", "star", "cross")
# (first, second): the second member of a pair is the first one's clip reversed.
DIRECTION_PAIRS = (
    ("moving left", "moving right"),
    ("moving up", "moving down"),
    ("rotating clockwise", "rotating counter-clockwise"),
    ("growing", "shrinking"),
)
UNPAIRED = ("blinking",)
MOTIONS = tuple(motion for pair in DIRECTION_PAIRS for motion in pair) + UNPAIRED
FRAMES = 8
STEP_PIXELS = 4.0
STEP_DEGREES = 15.0
RADIUS_RANGE = (5.0, 15.0)
MOVING_RADIUS = (6.0, 10.0)
TEMPLATE = "a video of a {}."


@dataclass(frozen=True)
class ActionClass:
    shape: str
    motion: str

    @property
    def name(self) -> str:
        return f"{self.shape} {self.motion}"

    @property
    def group(self) -> int:
        """Index of the motion's direction pair (or of the unpaired motion after them)."""
        return next(i for i, pair in enumerate(DIRECTION_PAIRS + tuple((m,) for m in UNPAIRED)) if self.motion in pair)

    @property
    def is_base(self) -> bool:
        """Base when shape index + motion group is even: every shape and every motion occurs in base,
        both members of a direction pair fall on the same side, and no novel combination is ever trained."""
        return (VIDEO_SHAPES.index(self.shape) + self.group) % 2 == 0

    def partner(self) -> "ActionClass | None":
        """The time-reversed class of a direction pair; None for unpaired motions."""
        for first, second in DIRECTION_PAIRS:
            if self.motion in (first, second):
                return ActionClass(self.shape, second if self.motion == first else first)
        return None


def classes() -> list[ActionClass]:
    """All classes, shape-major."""
    return [ActionClass(shape, motion) for shape in VIDEO_SHAPES for motion in MOTIONS]


def base_classes() -> list[ActionClass]:
    return [action for action in classes() if action.is_base]


def novel_classes() -> list[ActionClass]:
    return [action for action in classes() if not action.is_base]


def _forward_states(shape: str, group: int, rng: np.random.Generator, frames: int) -> list[FrameState]:
    """One clip of the first member of direction pair `group` (or of blinking)."""
    colour = jittered_colour(list(COLOURS)[rng.integers(len(COLOURS))], rng)
    steps = np.arange(frames)
    if group in (0, 1):  # moving left / moving up: the path fits inside the frame
        radius = rng.uniform(*MOVING_RADIUS)
        travel = STEP_PIXELS * (frames - 1)
        start = rng.uniform(radius + travel, IMAGE_SIZE - radius)
        across = rng.uniform(radius, IMAGE_SIZE - radius)
        along = start - STEP_PIXELS * steps
        xs, ys = (along, np.full(frames, across)) if group == 0 else (np.full(frames, across), along)
        angle = rng.uniform(0, 360)
        return [FrameState(shape, colour, float(x), float(y), radius, angle) for x, y in zip(xs, ys)]
    x, y = rng.uniform(IMAGE_SIZE / 3, 2 * IMAGE_SIZE / 3, size=2)
    if group == 2:  # rotating clockwise
        radius, start = rng.uniform(*MOVING_RADIUS), rng.uniform(0, 360)
        return [FrameState(shape, colour, x, y, radius, start + STEP_DEGREES * t) for t in steps]
    angle = rng.uniform(0, 360)
    if group == 3:  # growing
        radii = np.linspace(*RADIUS_RANGE, frames)
        return [FrameState(shape, colour, x, y, float(r), angle) for r in radii]
    radius, phase = rng.uniform(*MOVING_RADIUS), rng.integers(2)  # blinking
    return [FrameState(shape, colour, x, y, radius, angle, visible=bool((t + phase) % 2 == 0)) for t in steps]


def clip_states(action: ActionClass, rng: np.random.Generator, frames: int = FRAMES) -> list[FrameState]:
    """The per-frame states of one clip of `action`; a pair's second member is the reversed first."""
    states = _forward_states(action.shape, action.group, rng, frames)
    partner = action.partner()
    return states[::-1] if partner is not None and DIRECTION_PAIRS[action.group][1] == action.motion else states


def render_clip(action: ActionClass, seed: int | list[int], frames: int = FRAMES) -> np.ndarray:
    """(frames, 64, 64, 3) uint8, a pure function of (action, seed, frames)."""
    return draw_clip(clip_states(action, np.random.default_rng(seed), frames), IMAGE_SIZE)


def descriptions(action: ActionClass) -> dict[str, list[str]]:
    """Two spatial and two temporal sentences, in stage-1 words wherever stage 1 has them."""
    shape = action.shape
    places = {"moving left": ("right", "left"), "moving right": ("left", "right"),
              "moving up": ("bottom", "top"), "moving down": ("top", "bottom")}
    if action.motion in places:
        start, end = places[action.motion]
        # Spatial sentences see the frames, not their order: both members of a pair get the same ones.
        first, last = sorted((start, end), key=POSITIONS.index)
        spatial = [f"a {shape} at the {first} and a {shape} at the {last}", f"a photo of a {shape}"]
        temporal = [f"a {shape} that starts at the {start} and ends at the {end}",
                    f"first a {shape} at the {start} then a {shape} at the {end}"]
    elif action.motion.startswith("rotating"):
        turn = action.motion.removeprefix("rotating ")
        spatial = [f"a {shape} that stays at the same place", f"a photo of a {shape}"]
        temporal = [f"a {shape} that turns {turn}", f"a {shape} that stays at the same place and turns {turn}"]
    elif action.motion in ("growing", "shrinking"):
        start, end = ("small", "large") if action.motion == "growing" else ("large", "small")
        spatial = [f"a small {shape} and a large {shape}", f"a photo of a {shape} at the center"]
        temporal = [f"a {shape} that starts {start} and ends {end}", f"first a {start} {shape} then a {end} {shape}"]
    else:
        spatial = [f"a {shape} and an empty image", f"a photo of a {shape}"]
        temporal = [f"a {shape} that appears and disappears again", f"first a {shape} then an empty image then a {shape}"]
    return {"spatial": spatial, "temporal": temporal}


def direction_pair_accuracy(
    class_names: list[str], labels: np.ndarray, probabilities: np.ndarray, pair: tuple[str, str] | None = None
) -> float:
    """Share of videos of paired classes scored above their time-reversed partner (chance: 50%).

    Only frame order separates a pair, so this isolates what the temporal path learned. `pair`
    (one of DIRECTION_PAIRS) keeps that pair's videos only: each pair changes a different
    attribute over time (position, angle, size), and the temporal path can only order frames
    whose embeddings hold that attribute.
    """
    index = {name: i for i, name in enumerate(class_names)}
    wins = []
    for label, scores in zip(labels, probabilities):
        shape, _, motion = class_names[label].partition(" ")
        partner = ActionClass(shape, motion).partner()
        if partner is not None and partner.name in index and (pair is None or motion in pair):
            wins.append(scores[label] > scores[index[partner.name]])
    return 100.0 * float(np.mean(wins)) if wins else float("nan")
