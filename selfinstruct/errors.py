"""The errors a command ends with: one type per exit code of the README's "Exit codes" table.

Every error the command line turns into an exit code derives from one of these, so the code is
decided where the error is defined, and the command line maps errors to codes in one place
(``exit_code``). An error that is a kind of another with a different code (a damaged journal line
is bad input, other journal errors are failures) names its own code's type first among its bases,
so that its code wins. This module imports nothing from the package: every layer may raise these.
"""

import signal


class SelfInstructError(Exception):
    """An error that ends a command with its message as one line and ``exit_code``."""

    exit_code: int = 1


class Failed(SelfInstructError):
    """Exit 1: a run-time failure (disk full, the embedded server died)."""

    exit_code = 1


class BadInput(SelfInstructError):
    """Exit 2: bad input (seeds, config, settings, prompts, run directory, a damaged journal line, a
    device where a file belongs), named before any request is sent; or the run directory is in use."""

    exit_code = 2


class EndpointRefused(SelfInstructError):
    """Exit 3: the endpoint refused the run (its key, model or access, every first request, or
    ``response_format``)."""

    exit_code = 3


class StoppedEarly(SelfInstructError):
    """Exit 4: a stop rule or a budget stopped the run before its target; it can be resumed."""

    exit_code = 4


class FailedOrRefused(SelfInstructError):
    """Exit 3 when ``refused`` (the endpoint refuses us), else exit 1: for an error whose cause is
    known only where it is raised (the judge's, whose endpoint is called on the way)."""

    refused: bool = False

    @property
    def exit_code(self) -> int:
        return EndpointRefused.exit_code if self.refused else Failed.exit_code


class InterruptedBySignal(SelfInstructError):
    """Exit 128 + the signal's number (129 SIGHUP, 130 Ctrl+C, 143 SIGTERM); what was saved can be resumed."""

    signum: int = signal.SIGINT

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(error: BaseException) -> int:
    """The README's exit code for an error a command ended with: Ctrl+C is an interruption like the
    signals the commands catch; an error of none of the types above is a failure."""
    if isinstance(error, KeyboardInterrupt):
        return 128 + signal.SIGINT
    return error.exit_code if isinstance(error, SelfInstructError) else Failed.exit_code
