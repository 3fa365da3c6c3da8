"""Counting what a run did: requests, tokens and cost per stage, rejections, retries.

Every count is rebuilt from the journals when a run is resumed, so it covers the
whole run, not one session.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from selfinstruct.endpoint.pricing import Price
from selfinstruct.store.rundir import answered, attempts_of


@dataclass
class Stats:
    target: int = 0
    accepted: int = 0
    price: Price | None = None  # None: the cost is unknown
    stage_prices: dict = field(default_factory=dict)  # stage -> its own Price (the judge's model), or None
    rejected: Counter = field(default_factory=Counter)  # reason -> count
    requests: Counter = field(default_factory=Counter)  # stage -> answered requests
    attempts: int = 0  # HTTP requests sent, retries and abandoned requests included
    failed: Counter = field(default_factory=Counter)  # reason -> requests that failed for good
    retries: Counter = field(default_factory=Counter)  # reason -> retried attempts
    tokens_in: Counter = field(default_factory=Counter)  # stage -> prompt tokens, retried attempts included
    tokens_out: Counter = field(default_factory=Counter)  # stage -> completion tokens
    estimated: int = 0  # requests whose tokens were estimated (the server reported no usage)
    candidates: Counter = field(default_factory=Counter)  # stage -> candidates that reached it
    wall_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)  # this session
    session_requests: int = 0
    session_accepted_from: int | None = None  # accepted when the first answer of this session came

    def count_response(self, record: dict, live: bool = False) -> None:
        """An abandoned request's attempts, tokens and retries count; it is not an answered or failed request."""
        stage = record["stage"]
        self.attempts += attempts_of(record)
        self.tokens_in[stage] += record.get("prompt_tokens", 0)
        self.tokens_out[stage] += record.get("completion_tokens", 0)
        self.estimated += bool(record.get("tokens_estimated"))
        self.retries.update(record.get("retries", {}))
        if not answered(record):
            return
        self.requests[stage] += 1
        if record.get("error"):
            self.failed[record["error"]] += 1
        if live:
            self.session_requests += 1
            if self.session_accepted_from is None:
                self.session_accepted_from = self.accepted

    def count_rejection(self, record: dict) -> None:
        self.rejected[record["reason"]] += 1

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens_in.values()) + sum(self.tokens_out.values())

    def price_of(self, stage: str) -> Price | None:
        return self.stage_prices.get(stage, self.price)

    @property
    def cost(self) -> float | None:
        costs = self._costs()
        return None if costs is None else sum(costs.values())

    def _costs(self) -> dict[str, float] | None:
        """USD per stage; None if any stage's price is unknown."""
        prices = {stage: self.price_of(stage) for stage in self.tokens_in}  # abandoned requests' stages too
        if self.price is None or None in prices.values():
            return None
        return {stage: price.cost(self.tokens_in[stage], self.tokens_out[stage]) for stage, price in prices.items()}

    def to_dict(self) -> dict:
        price, costs = self.price, self._costs()
        return {
            "target": self.target,
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected.most_common()),
            "candidates_by_stage": dict(self.candidates),
            "requests": sum(self.requests.values()),
            "attempts": self.attempts,
            "requests_by_stage": dict(self.requests),
            "failed_requests_by_reason": dict(self.failed.most_common()),
            "retries_by_reason": dict(self.retries.most_common()),
            "tokens_in": sum(self.tokens_in.values()),
            "tokens_out": sum(self.tokens_out.values()),
            "tokens_in_by_stage": dict(self.tokens_in),
            "tokens_out_by_stage": dict(self.tokens_out),
            "tokens_estimated_requests": self.estimated,
            "cost_usd": None if costs is None else round(sum(costs.values()), 6),
            "cost_usd_by_stage": None if costs is None else {stage: round(c, 6) for stage, c in costs.items()},
            "price_usd_per_million": None if price is None else {
                "input": price.input, "output": price.output, "source": price.source},
            "wall_seconds": round(self.wall_seconds, 2),
        }

    def line(self) -> str:
        """One status line: rate, ETA, tokens, cost, top rejections, retries."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        parts = [f"{self.session_requests / elapsed:.1f} req/s"]
        gained = self.accepted - (self.session_accepted_from if self.session_accepted_from is not None
                                  else self.accepted)
        if gained > 0 and self.accepted < self.target:
            parts.append(f"ETA {_duration((self.target - self.accepted) * elapsed / gained)}")
        parts.append(f"tokens {_short(sum(self.tokens_in.values()))} in / {_short(sum(self.tokens_out.values()))} out")
        cost = self.cost
        parts.append("cost unknown" if cost is None else f"${cost:.4f}" if cost < 1 else f"${cost:.2f}")
        rejected = sum(self.rejected.values())
        top = ", ".join(f"{reason} {n}" for reason, n in self.rejected.most_common(2))
        parts.append(f"rejected {rejected}" + (f" ({top})" if top else ""))
        if self.retries:
            parts.append(f"retries {sum(self.retries.values())}")
        if self.failed:
            parts.append(f"failed {sum(self.failed.values())}")
        return " · ".join(parts)


def _short(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}K" if n >= 1e4 else str(n)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
