"""`msta pretrain-tiny OUT`: pre-train msta-tiny, the small CLIP of the synthetic world."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from msta_cli.commands.errors import exits_on_errors
from msta_cli.core.synthetic.pretraining import PretrainOptions, pretrain

console = Console()
_KEYS = ("step", "seconds", "loss", "shape", "colour", "size", "position", "exact")


@exits_on_errors
def pretrain_tiny(
    out: Path = typer.Argument(..., help="Folder for the open_clip config, weights, vocabulary and training log."),
    steps: int = typer.Option(PretrainOptions.steps, help="Optimizer steps; the cosine schedule spans them."),
    seed: int = typer.Option(PretrainOptions.seed, help="Seeds the weights and every batch of stills."),
    batch_size: int = typer.Option(PretrainOptions.batch_size, help="Captioned stills per step."),
    lr: float = typer.Option(PretrainOptions.lr, help="Peak AdamW learning rate."),
    threads: int = typer.Option(PretrainOptions.threads, help="CPU threads; 1 is faster when other jobs share the cores."),
    position_share: float = typer.Option(PretrainOptions.position_share, help="Share of a batch in groups differing only in position."),
    shape_share: float = typer.Option(PretrainOptions.shape_share, help="Share of a batch in groups differing only in shape."),
    position_loss: float = typer.Option(
        PretrainOptions.position_loss, help="Weight of an auxiliary loss predicting each still's position cell (0: none, contrastive only)."
    ),
    orientation_loss: float = typer.Option(
        PretrainOptions.orientation_loss, help="Weight of an auxiliary loss regressing each still's angle (0: none)."
    ),
    device: str = typer.Option(
        PretrainOptions.device, help="cpu or cuda; the default run takes 17 minutes on one CPU thread, minutes on a GPU."
    ),
) -> None:
    """Contrastively pre-train msta-tiny on captioned stills of the synthetic world (stage 1).

    Options and OUT are checked before training; a run whose loss or weights stop being finite fails and writes nothing.
    """
    options = PretrainOptions(steps=steps, seed=seed, batch_size=batch_size, lr=lr, threads=threads,
                              position_share=position_share, shape_share=shape_share, position_loss=position_loss,
                              orientation_loss=orientation_loss, device=device)
    summary = pretrain(out, options, on_log=lambda row: console.print("  ".join(f"{k} {row[k]}" for k in _KEYS if k in row)))
    console.print(f"wrote {out} in {summary['wall_clock_seconds']} s; final zero-shot: {summary['final']}")
