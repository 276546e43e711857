"""Renders training events: a rich live progress bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from msta_cli.core.backbone import Preprocessing


def input_line(preprocessing: Preprocessing) -> str:
    """The input contract a run uses, shown because peers silently normalised CLIP inputs with
    ImageNet's statistics."""
    return f"input {preprocessing.size}px, normalised with the backbone's mean {preprocessing.mean} std {preprocessing.std}"


class TrainingReporter:
    """Receives the core's events (dicts) and shows step, loss, lr, clips/s, ETA, GPU memory."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.bar: Progress | None = None
        self.task = None
        self.started = time.perf_counter()
        self.unreadable = 0

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "run":
            self.unreadable = 0  # each run keeps its own problems.csv
            self.console.print(f"[bold]run[/] {event['label']}")
        elif kind == "start":
            self._start(event)
        elif kind == "step":
            self._step(event)
        elif kind == "selection":
            self.console.print(f"epoch {event['epoch']}: {event['split']} top-1 {event['top1']:.2f}")
        elif kind == "evaluate":
            self._stop()
            model = " ".join(part for part in (event["method"], event["run"]) if part)
            self.console.print(f"evaluating {model} on {event['split']}")
        elif kind == "note":
            self.console.print(f"[yellow]{escape(event['text'])}[/]", soft_wrap=True, highlight=False)
        elif kind == "failed_videos":
            self._failed_videos(event)
        elif kind == "epoch" and event["unreadable"] > self.unreadable:
            self.unreadable = event["unreadable"]
            self.console.print(
                f"[yellow]epoch {event['epoch'] - 1}: {self.unreadable:,} training video(s) could not be read "
                "so far; training goes on without them (all listed in problems.csv)[/]",
                soft_wrap=True, highlight=False,
            )

    def _failed_videos(self, event: dict) -> None:
        scored = event["videos"] - event["failed"]
        message = (
            f"{event['split']}: {event['failed']:,} of {event['videos']:,} test videos could not be read; "
            f"top-1 and the other accuracies are over the {scored:,} scored (each failure is listed in {event['problems']})"
        )
        unscored = event["unscored_classes"]
        if unscored:
            names = ", ".join(repr(name) for name in unscored[:5]) + (f" and {len(unscored) - 5} more" if len(unscored) > 5 else "")
            message += f"; no video of {names} could be scored, so mean_class leaves {'it' if len(unscored) == 1 else 'them'} out"
        self.console.print(f"[yellow]{message}[/]", soft_wrap=True, highlight=False)

    def _start(self, event: dict) -> None:
        total = event["steps_per_epoch"] * event["epochs"]
        done = event["progress"].global_step
        parameters = event["parameters"]
        self.console.print(
            f"trainable parameters {parameters['trainable']:,}: {parameters['trainable_percent_of_backbone']:.2f}% of "
            f"the backbone's {parameters['backbone']:,}, {event['world_size']} process(es)"
        )
        self.console.print(
            f"{event['epochs']} epochs x {event['steps_per_epoch']} steps "
            f"(micro-batch {event['micro_batch']}, accumulation {event['accumulation']}), from step {done}"
        )
        self.console.print(input_line(event["preprocessing"]), highlight=False)
        if self.live:
            self._stop()
            self.bar = Progress(
                TextColumn("step {task.completed}/{task.total}"), BarColumn(), TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(), console=self.console,
            )
            self.task = self.bar.add_task("train", total=total, completed=done, status="")
            self.bar.start()

    def _step(self, event: dict) -> None:
        memory = f" mem {event['memory']:.1f} GiB" if event.get("memory") else ""
        status = f"loss {event['loss']:.4f} lr {event['lr']:.2e} {event['clips_per_s']:.1f} clips/s{memory}"
        if self.bar is not None:
            self.bar.update(self.task, completed=event["step"], status=status)
        else:
            self.console.print(f"epoch {event['epoch']} step {event['step']}: {status}", highlight=False)

    def _stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def close(self) -> None:
        self._stop()
