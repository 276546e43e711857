"""The training reporter's plain log lines (what a log file of `msta train` shows)."""

from rich.console import Console

from msta_cli.commands.progress import TrainingReporter


def test_evaluation_lines_name_the_model_without_an_empty_run():
    console = Console(record=True, force_terminal=False, width=200)
    reporter = TrainingReporter(console)
    reporter({"event": "evaluate", "method": "zero-shot", "run": "", "split": "base"})
    reporter({"event": "evaluate", "method": "MSTA", "run": "seed1", "split": "novel"})
    assert console.export_text().splitlines() == ["evaluating zero-shot on base", "evaluating MSTA seed1 on novel"]
