"""Counting what a run did, and showing it while it runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@dataclass
class Stats:
    target: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count
    requests: Counter = field(default_factory=Counter)  # stage -> answered requests
    failed: Counter = field(default_factory=Counter)  # reason -> requests that failed for good
    retries: Counter = field(default_factory=Counter)  # reason -> retried attempts
    tokens_in: Counter = field(default_factory=Counter)  # stage -> prompt tokens
    tokens_out: Counter = field(default_factory=Counter)  # stage -> completion tokens
    candidates: Counter = field(default_factory=Counter)  # stage -> candidates that reached it
    wall_seconds: float = 0.0

    def count_response(self, record: dict) -> None:
        stage = record["stage"]
        self.requests[stage] += 1
        if record.get("error"):
            self.failed[record["error"]] += 1
        self.tokens_in[stage] += record.get("prompt_tokens", 0)
        self.tokens_out[stage] += record.get("completion_tokens", 0)
        self.retries.update(record.get("retries", {}))

    def count_rejection(self, record: dict) -> None:
        self.rejected[record["reason"]] += 1

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected.most_common()),
            "candidates_by_stage": dict(self.candidates),
            "requests": sum(self.requests.values()),
            "requests_by_stage": dict(self.requests),
            "failed_requests_by_reason": dict(self.failed.most_common()),
            "retries_by_reason": dict(self.retries.most_common()),
            "tokens_in": sum(self.tokens_in.values()),
            "tokens_out": sum(self.tokens_out.values()),
            "tokens_in_by_stage": dict(self.tokens_in),
            "tokens_out_by_stage": dict(self.tokens_out),
            "wall_seconds": round(self.wall_seconds, 2),
        }

    def line(self) -> str:
        """One status line for the progress bar."""
        top = ", ".join(f"{reason} {n}" for reason, n in self.rejected.most_common(3))
        rejected = sum(self.rejected.values())
        return (f"rejected {rejected}" + (f" ({top})" if top else "")
                + f" · requests {sum(self.requests.values())}"
                + (f" · failed {sum(self.failed.values())}" if self.failed else "")
                + f" · tokens {sum(self.tokens_in.values())}/{sum(self.tokens_out.values())}")


class ProgressView:
    """A rich progress bar of accepted tasks with the counts beside it; silent when disabled."""

    def __init__(self, stats: Stats, enabled: bool, console: Console | None = None):
        self.stats = stats
        self._progress = Progress(
            TextColumn("[bold]accepted"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), console=console or Console(stderr=True), disable=not enabled,
            transient=False,
        )
        self._task = None

    def __enter__(self) -> ProgressView:
        self._progress.__enter__()
        self._task = self._progress.add_task(self.stats.line(), total=self.stats.target,
                                             completed=self.stats.accepted)
        return self

    def refresh(self) -> None:
        self._progress.update(self._task, completed=self.stats.accepted, description=self.stats.line())

    def __exit__(self, *exc) -> None:
        self.refresh()
        self._progress.__exit__(*exc)
