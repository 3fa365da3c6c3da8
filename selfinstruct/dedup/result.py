"""What ``filter`` ends with: a FilterReport of what it wrote, or a FilterError saying in one line why
it stopped (most are raised before anything is read or written)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from selfinstruct.errors import BadInput


class FilterError(BadInput, ValueError):
    """Why a filter stopped, in one line: the command prints it, never a traceback."""


@dataclass
class FilterReport:
    """What a filter did: the records it kept and dropped (by reason), the files it wrote, how long."""

    total: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    output: Path | None = None
    dropped_output: Path | None = None  # the first input's
    outputs: list[tuple[Path, Path]] = field(default_factory=list)  # every (kept, dropped) file written
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what the deduplication engine did
