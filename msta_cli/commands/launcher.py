"""`--nproc N`: run a command under PyTorch's own launcher (torchrun) from this process."""

from __future__ import annotations

from signal import Signals

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run

from msta_cli.commands.errors import EXIT_FAILURE, stderr


def launch(nproc: int, command: list[str]) -> int:
    """`torchrun --standalone --nproc-per-node N -m msta_cli COMMAND...`; its exit code."""
    arguments = ["--standalone", f"--nproc-per-node={nproc}", "-m", "msta_cli", *command]
    stderr.print(" ".join(["torchrun", *arguments]), highlight=False, soft_wrap=True)
    return torchrun(arguments)


def torchrun(arguments: list[str]) -> int:
    """torchrun ARGUMENTS in this process: the exit code of rank 0 (or of the first process that failed)."""
    try:
        run(parse_args(arguments))
    except ChildFailedError as error:
        rank, first = error.get_first_failure()
        if rank != 0 or first.exitcode < 0:
            # Rank 0 prints its own errors; a crash elsewhere ends in the other processes'
            # tracebacks of a lost connection, so name the process that stopped first.
            stderr.print(f"[bold red]process {rank} stopped first[/] ({_exit_reason(first.exitcode)}); its error is above", highlight=False)
        failure = error.failures.get(0) or first
        return failure.exitcode if failure.exitcode > 0 else EXIT_FAILURE
    except SignalException as signal:
        stderr.print(f"stopped by {signal.sigval.name}", highlight=False)
        return EXIT_FAILURE
    return 0


def _exit_reason(exit_code: int) -> str:
    return f"killed by {Signals(-exit_code).name}" if exit_code < 0 else f"exit code {exit_code}"
