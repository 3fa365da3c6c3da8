"""The ledger: journaled requests, the one path by which `generate` and `filter --judge` ask an endpoint.

A call is sent only if the journal holds no answer under its key, so a second session sends only
what the first never had answered. Every attempt (the first and each retry) is counted before it is
sent and none is sent once the ledger stops: a budget is spent, nearly every recent request failed
(the failure rule), or the endpoint refused the first requests (a wrong setting, not a bad prompt).
A call waiting to retry when the ledger stops is abandoned: journaled with its attempts, so they
count in the next session, which sends it again.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

from selfinstruct.endpoint.batch_api import BatchUnavailable
from selfinstruct.endpoint.batcher import Batcher
from selfinstruct.endpoint.call import Call
from selfinstruct.endpoint.client import Abandoned, FatalAPIError, ModelClient, RequestFailed, Unreachable, Usage
from selfinstruct.endpoint.tokens import estimate_tokens
from selfinstruct.endpoint.slots import PrioritySlots
from selfinstruct.endpoint.stats import Stats
from selfinstruct.errors import StoppedEarly
from selfinstruct.store.journal import Journal
from selfinstruct.store.rundir import ABANDONED, answered

# Refusals (400, 413, 422) of this many requests before any success mean the settings are wrong.
REFUSALS_BEFORE_FATAL = 3


class RunStopped(StoppedEarly, RuntimeError):
    """The run cannot progress: it stopped before its target and can be resumed."""


@dataclass
class Limits:
    """When the ledger stops sending: budgets (None: none) and the failure rule (window 0: off)."""

    max_requests: int | None = None  # HTTP requests, retries included, over every session
    max_total_tokens: int | None = None
    max_cost: float | None = None
    failure_window: int = 0
    max_failure_share: float = 0.9
    hold_refusals: bool = True  # refusals before any success are held, and REFUSALS_BEFORE_FATAL stop it all
    refusal_hint: str = ""  # appended to the refused-requests error: what else to check
    whose: str = "the"  # the failure rule's reason names whose requests failed ...
    failure_settings: str = "failure-window, max-failure-share"  # ... and the settings of the rule


@dataclass
class Ledger:
    journal: Journal
    stats: Stats
    client: ModelClient | None
    judge_client: ModelClient | None = None
    concurrency: int = 8
    limits: Limits = field(default_factory=Limits)
    key_field: str = "slot"  # the journal field a call's key is
    retry_failed: bool = False  # a final failure is asked again in the next session (filter --judge)
    on_record: Callable[[dict], None] = lambda record: None  # after each journaled line
    batcher: Batcher | None = None  # --batch: calls go in the provider's batches, not one by one

    def __post_init__(self):
        self.judge_client = self.judge_client or self.client
        self.slots = PrioritySlots(self.concurrency)
        self.cache: dict[str, dict] = {}
        self.stop_reason: str | None = None
        self.sent = 0  # calls sent in this session
        self.in_flight = 0  # attempts (HTTP requests) of calls not yet journaled or held
        self.succeeded = 0
        self.recent: deque[str | None] = deque(maxlen=self.limits.failure_window or None)  # last errors
        self.refused: list[dict] = []  # refusals before any success, journaled only once one succeeds
        self.reserved: dict[str, tuple[int, float]] = {}  # --batch: worst-case tokens and cost of calls in batches
        if self.batcher is not None:
            self.batcher.fits = self._fits

    def replay(self, records: list[dict], count: bool = True) -> None:
        """Take a previous session's journal: its answers are not asked again; ``count``: into the stats."""
        for record in records:
            if self._final(record):
                self.cache.setdefault(record[self.key_field], record)
            if count:
                self.stats.count_response(record)

    async def ask(self, call: Call) -> dict:
        """The journaled answer to a call, sending it only if it was never answered."""
        cached = self.cache.get(call.key)
        if cached is not None:
            return cached
        async with self.slots.slot(call.priority) if self.batcher is None else nullcontext():
            if self.stopping():
                raise RunStopped(self.stop_reason)
            self.sent += 1
            record = dict(call.fields)
            attempts, refused, stopped = 0, None, None

            def sending() -> None:
                nonlocal attempts
                attempts += 1
                self.in_flight += 1

            sent_at = time.monotonic()
            try:
                if self.batcher is not None:
                    completion = await self.batcher.complete(call, sending)
                else:
                    client = self.judge_client if call.judge else self.client
                    completion = await client.complete(call.prompt, max_tokens=call.max_tokens,
                                                       temperature=call.temperature, top_p=call.top_p, stop=call.stop,
                                                       give_up=self.stopping, sending=sending,
                                                       response_format=call.response_format)
                record.update(text=completion.text, finish_reason=completion.finish_reason, error=None)
                retries, usage = completion.retries, completion.usage
            except FatalAPIError:  # before the slot passes on: nothing more is sent after it
                self.stop_reason = self.stop_reason or "the endpoint refused the run"  # its words may hold secrets
                raise
            except (BatchUnavailable, Unreachable) as exc:  # before the slot passes on, like a refusal
                self.stop_reason = self.stop_reason or str(exc)
                raise RunStopped(self.stop_reason) from None
            except RequestFailed as exc:
                record.update(text="", finish_reason=None, error=exc.reason, detail=exc.detail)
                retries, usage = exc.retries, exc.usage
                refused = exc if exc.refused and self.limits.hold_refusals and not self.succeeded else None
            except (Abandoned, asyncio.CancelledError) as exc:  # the ledger stops: a rule, a budget, a signal
                stopped = RunStopped(self.stop_reason) if isinstance(exc, Abandoned) else exc
                if not attempts:
                    raise stopped from None
                record.update(text="", finish_reason=None, error=ABANDONED,
                              detail=f"the run stopped: {self.stop_reason or 'cancelled'}")
                retries, usage = (exc.retries, exc.usage) if isinstance(exc, Abandoned) else ([], Usage())
            finally:
                self.in_flight -= attempts  # from here on the record counts them: journaled, or held
                self.reserved.pop(call.key, None)
            record.update(attempts=attempts, prompt_tokens=usage.prompt_tokens,
                          completion_tokens=usage.completion_tokens, seconds=round(time.monotonic() - sent_at, 3))
            if usage.estimated:
                record["tokens_estimated"] = True
            if retries:
                record["retries"] = dict(Counter(retries))
            if refused:
                self._hold_refusal(record, refused)
                return record
            if record["error"] is None:
                self.succeeded += 1
                for held in self.refused:
                    self._journal(held)
                self.refused.clear()
            self._journal(record)
        if stopped:  # journaled, so that its attempts count on resume, which sends it again
            raise stopped
        self._check_failures(record)
        return record

    def stopping(self) -> bool:
        """Whether the ledger stops (a stop rule fired, or a budget is spent); asked before every attempt."""
        self.stop_reason = self.stop_reason or self._budget_spent()
        return bool(self.stop_reason)

    def _final(self, record: dict) -> bool:
        """Whether a journaled call is its key's answer, so that it is never asked again."""
        return answered(record) and not (self.retry_failed and record.get("error"))

    def _journal(self, record: dict) -> None:
        self.journal.append(record)
        if self._final(record):
            self.cache[record[self.key_field]] = record
        self.stats.count_response(record, live=True)
        self.on_record(record)

    def _budget_spent(self) -> str | None:
        """The budget this ledger has used up, if any: then no new attempt is sent."""
        limits, stats = self.limits, self.stats
        sent = self._sent()
        if limits.max_requests is not None and sent >= limits.max_requests:
            return f"budget reached: max-requests {limits.max_requests} ({sent} HTTP requests sent, retries included)"
        if limits.max_total_tokens is not None and stats.total_tokens >= limits.max_total_tokens:
            return f"budget reached: max-total-tokens {limits.max_total_tokens} ({stats.total_tokens} used)"
        if limits.max_cost is not None and stats.cost >= limits.max_cost:
            return f"budget reached: max-cost ${limits.max_cost:g} (${stats.cost:.4f} spent)"
        return None

    def _sent(self) -> int:
        """HTTP requests sent: those journaled (over every session), of calls in flight and of held refusals."""
        return self.stats.attempts + self.in_flight + sum(held["attempts"] for held in self.refused)

    def _fits(self, calls: list[Call]) -> tuple[int, bool]:
        """--batch: how many of these calls (in order) one batch may hold, their worst case (the prompt's
        estimated tokens and max-tokens out, at the batch price) added to what is spent and to the worst case
        of the batches in flight; and whether the ledger stops. The rest wait while a batch in flight (this
        one included) may free its worst case; with none, the ledger stops: nothing is sent past a budget."""
        if self.stopping():
            return 0, True
        limits, stats = self.limits, self.stats
        waiting_on = bool(self.reserved)  # batches in flight, whose worst case is counted until they answer
        requests = self._sent()
        tokens = stats.total_tokens + sum(t for t, _ in self.reserved.values())
        cost = (stats.cost or 0.0) + sum(c for _, c in self.reserved.values())
        for fitting, call in enumerate(calls):
            prompt_tokens = estimate_tokens(call.prompt)
            price = stats.price_of(call.fields.get("stage", ""))
            worst = price.cost(prompt_tokens, call.max_tokens) if price else 0.0
            over = (("max-requests", limits.max_requests, requests, 1),
                    ("max-total-tokens", limits.max_total_tokens, tokens, prompt_tokens + call.max_tokens),
                    ("max-cost", limits.max_cost, cost, worst))
            spent = next(((name, budget, used, need) for name, budget, used, need in over
                          if budget is not None and used + need > budget), None)
            if spent:
                if waiting_on or fitting:  # a batch in flight (or this one) frees its worst case when it answers
                    return fitting, False
                name, budget, used, need = spent
                shown = (lambda v: f"${v:.4f}") if name == "max-cost" else (lambda v: f"{v:,}")
                self.stop_reason = (f"budget reached: {name} {f'${budget:g}' if name == 'max-cost' else budget}: the "
                                    f"next batched request's worst case ({shown(need)}) does not fit in what is "
                                    f"left ({shown(max(budget - used, 0))}); {fitting:,} of {len(calls):,} sent")
                return fitting, True
            requests, tokens, cost = requests + 1, tokens + prompt_tokens + call.max_tokens, cost + worst
            self.reserved[call.key] = (prompt_tokens + call.max_tokens, worst)
        return len(calls), False

    def _hold_refusal(self, record: dict, exc: RequestFailed) -> None:
        """A refused request before any success: a wrong setting stops the run rather than fail every request."""
        self.refused.append(record)
        # Only the one that makes it REFUSALS_BEFORE_FATAL raises: an answer that arrives in the same turn
        # of the event loop, before the others are cancelled, must not raise a second error with another count.
        if len(self.refused) == REFUSALS_BEFORE_FATAL:
            self.stop_reason = self.stop_reason or "the endpoint refused the first requests"
            raise FatalAPIError(f"the endpoint refused the first {len(self.refused)} requests "
                                f"({exc.reason}: {exc.detail}); check --model, --max-tokens and "
                                f"--api{self.limits.refusal_hint}")

    def _check_failures(self, record: dict) -> None:
        """The failure stop rule: almost every recent request failed."""
        window = self.limits.failure_window
        if not window:
            return
        self.recent.append(record["error"])
        failures = [error for error in self.recent if error]
        if len(self.recent) == window and len(failures) >= self.limits.max_failure_share * window:
            common = ", ".join(f"{reason} {n}" for reason, n in Counter(failures).most_common(3))
            settings = f"; {self.limits.failure_settings}" if self.limits.failure_settings else ""
            self.stop_reason = (f"{len(failures)} of {self.limits.whose} last {window} requests failed "
                                f"({common}{settings})")


async def gather(*coroutines):
    """Run concurrently. A fatal error cancels the rest; a stop lets requests in flight finish first."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None and not isinstance(task.exception(), RunStopped):
                    raise task.exception()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if task.exception() is not None:
            raise task.exception()
    return [task.result() for task in tasks]
