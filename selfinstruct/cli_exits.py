"""How a command ends when it cannot finish: one line on stderr and the README's exit code.

Every command runs its work inside ``exits``, the one place where errors become exit codes; the
code comes from the error's type (selfinstruct.errors), the wording from the command where it
says more than the error's message (a hint to resume, a redacted key).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import NoReturn

import typer

from selfinstruct.errors import BadInput, InterruptedBySignal, SelfInstructError, exit_code


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def exits(wording: Callable[[SelfInstructError], str] = str, *,
          interrupted: Callable[[int], str] | None = None,
          bad_input: Mapping[type[Exception], Callable[[Exception], str]] | None = None) -> Iterator[None]:
    """Run a command's work; end each way it can fail with one line and its exit code.

    ``wording``: the line for one of our errors (its message unless the command says more).
    ``interrupted``: the line for Ctrl+C or a signal the command catches, given the signal's number;
    without it the command exits 128 + the number quietly. ``bad_input``: exceptions other than
    ours that this command reads as bad input (exit 2), each with its wording.
    """
    others = tuple(bad_input or ())
    try:
        yield
    except (KeyboardInterrupt, InterruptedBySignal) as error:
        code = exit_code(error)
        if interrupted is not None:
            typer.echo(interrupted(signal.Signals(code - 128)), err=True)
        raise typer.Exit(code) from None
    except SelfInstructError as error:
        fail(wording(error), exit_code(error))
    except others as error:
        fail(next(word(error) for kind, word in bad_input.items() if isinstance(error, kind)), BadInput.exit_code)
