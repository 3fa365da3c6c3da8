"""Showing a run's progress: a live bar on a terminal, one plain line every ~10 s in a log.

Without a terminal (nohup, CI, a job scheduler) a bar would print nothing useful, so the
run prints a plain status line at a fixed interval instead, and job logs show progress.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from selfinstruct.endpoint.stats import Stats

LINE_SECONDS = 10.0
MODES = ("off", "lines", "bar")
RATE_AFTER = 1.0  # seconds into a stage before its rate is shown


class ProgressView:
    """``bar``: a rich progress bar updated per answer; ``lines``: ``print_line`` every LINE_SECONDS;
    ``off``: nothing."""

    def __init__(self, stats: Stats, mode: str = "off", print_line: Callable[[str], None] | None = None,
                 interval: float = LINE_SECONDS):
        self.stats, self.mode, self.interval = stats, mode, interval
        self._print = print_line or print
        self._progress = Progress(
            TextColumn("[bold]accepted"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), console=Console(stderr=True), disable=mode != "bar",
            transient=False,
        )
        self._task = None
        self._ticker: asyncio.Task | None = None

    async def __aenter__(self) -> ProgressView:
        self._progress.__enter__()
        self._task = self._progress.add_task(self.stats.line(), total=self.stats.target,
                                             completed=self.stats.accepted)
        if self.mode == "lines":
            self._ticker = asyncio.create_task(self._tick())
        return self

    def refresh(self) -> None:
        if self.mode == "bar":
            self._progress.update(self._task, completed=self.stats.accepted, description=self.stats.line())

    def status(self) -> str:
        return f"{time.strftime('%H:%M:%S')} accepted {self.stats.accepted}/{self.stats.target} · {self.stats.line()}"

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._print(self.status())

    async def __aexit__(self, *exc) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._print(self.status())  # where it ended, even for a run shorter than one interval
        self.refresh()
        self._progress.__exit__(*exc)


class FileProgress:
    """Progress of ``filter``, stage by stage (reading the input, deduplicating its records, writing
    the results): how far, how fast and the ETA of the stage. The same modes as ProgressView;
    called with (stage, done, total), not awaited."""

    STAGES = {"read": ("reading", "lines"), "dedup": ("deduplicating", "records"), "judge": ("judging", "records"),
              "write": ("writing", "lines")}

    def __init__(self, mode: str = "off", print_line: Callable[[str], None] | None = None,
                 interval: float = LINE_SECONDS):
        self.mode, self.interval = mode, interval
        self._print = print_line or print
        self._last = time.monotonic()
        self._stage, self._began, self._started, self._base = None, self._last, self._last, 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"),
            TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), disable=mode != "bar", transient=False)
        self._task = None

    def __enter__(self) -> FileProgress:
        self._progress.__enter__()
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        label, unit = self.STAGES[stage]
        if stage != self._stage:
            self._stage, self._began, self._started, self._base = stage, now, now, done
            if self.mode == "bar":
                self._task = self._progress.add_task(label, total=max(total, 1), done="", rate="")
        elif now - self._began < RATE_AFTER:
            # What a stage reports within its first second came at once (a journal's answers, say): the rate is
            # measured from its last report in that second, never as a burst's millions per second.
            self._started, self._base = now, done
        elapsed = now - self._started
        rate = (done - self._base) / elapsed if elapsed >= RATE_AFTER else None
        if self.mode == "bar":
            self._progress.update(self._task, completed=done, done=f"{done:,}/{total:,} {unit}",
                                  rate="" if rate is None else f"{rate:,.0f}/s")
        elif self.mode == "lines" and now - self._last >= self.interval:
            self._last = now
            speed = ""
            if rate:
                left = (total - done) / rate
                speed = f", {rate:,.0f} {unit}/s, ETA {int(left) // 60}m{int(left) % 60:02d}s"
            self._print(f"{time.strftime('%H:%M:%S')} filter {label}: {done:,} of {total:,} {unit} "
                        f"({min(done / max(total, 1), 1):.0%}){speed}")

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)


def count_lines(path) -> int:
    """Lines of a file, counted in large blocks (about a second per gigabyte)."""
    lines = 0
    with open(path, "rb") as stream:
        while block := stream.read(1 << 22):
            lines += block.count(b"\n")
    return lines
