"""The words of the synthetic world, stage-1 captions, and msta-tiny's compact tokenizer.

msta-tiny keeps open_clip's BPE but remaps the few hundred token ids this world uses onto a
compact table: with the full 49,408-row embedding the checkpoint would not fit in 15 MB.
Pad stays 0 and end-of-text is the largest id, so open_clip's argmax pooling finds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch

SHAPES = ("circle", "square", "triangle", "star", "cross")
COLOURS = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 240),
    "yellow": (235, 225, 40),
    "purple": (160, 60, 220),
    "cyan": (40, 220, 230),
}
SIZES = ("small", "large")
# 3 x 3 grid, row-major from the top left; (column, row) in 0..2.
POSITIONS = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)

# Every caption names the position (the prototype's position-less captions let the text tower
# collapse all positions onto one embedding); two of them drop colour or size instead.
CAPTION_TEMPLATES = (
    "a {size} {colour} {shape} at the {position}",
    "a {colour} {shape} at the {position}",
    "a {size} {shape} at the {position}",
    "a {shape} at the {position}",
    "a photo of a {size} {colour} {shape} at the {position}",
    "at the {position} a {size} {colour} {shape}",
    "a {colour} {shape} in the {position}",
    "an image of a {colour} {shape} at the {position}",
)

# Words never seen in stage 1 but needed by video prompts, class names and descriptions: their
# embeddings stay at initialisation, which is what makes motion novel to msta-tiny.
EXTRA_WORDS = (
    "video of moving rotating clockwise counter-clockwise growing shrinking blinking up down "
    "a the and then that it is starts ends stays same place size shape from to becomes smaller "
    "larger bigger visible invisible appears disappears again empty turns around its over time "
    "first last frame frames one while keeps shows with whole object"
)

VOCABULARY_FILE = "vocab.json"
SPECIAL = ("<pad>", "<start_of_text>", "<unk>")
END = "<end_of_text>"


def vocabulary_text() -> str:
    """Every word and punctuation mark the world uses; BPE splits words alone as in sentences."""
    templates = " ".join(CAPTION_TEMPLATES).replace("{", " ").replace("}", " ").replace("_", " ")
    return " ".join([*SHAPES, *COLOURS, *SIZES, *POSITIONS, EXTRA_WORDS, templates, ". , - :"])


@dataclass(frozen=True)
class Caption:
    """One still's attributes; `text` picks a template with a seeded generator."""

    shape: str
    colour: str
    size: str
    position: str

    def text(self, rng: np.random.Generator) -> str:
        template = CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))]
        return template.format(shape=self.shape, colour=self.colour, size=self.size, position=self.position)

    def full(self) -> str:
        return CAPTION_TEMPLATES[0].format(shape=self.shape, colour=self.colour, size=self.size, position=self.position)


class CompactTokenizer:
    """open_clip's BPE with ids remapped onto a small table; unknown tokens become `<unk>`."""

    def __init__(self, tokens: list[str], context_length: int):
        self.bpe = open_clip.tokenizer.SimpleTokenizer()
        self.tokens = list(tokens)
        self.context_length = context_length
        self.index = {self.bpe.encoder[token]: i for i, token in enumerate(self.tokens) if token in self.bpe.encoder}
        self.unknown = self.tokens.index("<unk>")

    @classmethod
    def build(cls, text: str, context_length: int) -> "CompactTokenizer":
        """The smallest table that covers `text`, in first-seen order (deterministic)."""
        bpe = open_clip.tokenizer.SimpleTokenizer()
        decoder = {i: token for token, i in bpe.encoder.items()}
        seen = dict.fromkeys(decoder[token_id] for token_id in bpe.encode(text))
        return cls([*SPECIAL, *seen, END], context_length)

    @classmethod
    def load(cls, path: str | Path) -> "CompactTokenizer":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["tokens"], int(data["context_length"]))

    def to_json(self) -> str:
        return json.dumps({"context_length": self.context_length, "tokens": self.tokens}, indent=0)

    def __len__(self) -> int:
        return len(self.tokens)

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> torch.Tensor:
        """Texts -> (texts, context_length) int64 ids, truncated so end-of-text always fits."""
        texts = [texts] if isinstance(texts, str) else texts
        length = context_length or self.context_length
        result = torch.zeros(len(texts), length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.index.get(token_id, self.unknown) for token_id in self.bpe.encode(text)][: length - 2]
            ids = [1, *ids, len(self.tokens) - 1]
            result[row, : len(ids)] = torch.tensor(ids)
        return result
