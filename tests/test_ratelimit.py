"""Rate limits: --rpm/--tpm space requests out; a 429 or a used-up limit header pauses every request."""

from __future__ import annotations

import asyncio
import time

import pytest
from openai_stub import Reply
from helpers import run_config
from selfinstruct import RunStopped, generate
from selfinstruct.endpoint.ratelimit import RateLimiter, parse_duration


def model_requests(server):
    return [r for r in server.requests if r.endpoint in ("chat", "completion")]


@pytest.mark.parametrize("text, seconds", [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1.5", 1.5),
                                           ("2h1m", 7260.0), ("0.5s", 0.5)])
def test_reset_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.slow
def test_rpm_and_tpm_space_requests_out():
    async def times(limiter, n, tokens):
        started, seen = time.monotonic(), []
        for _ in range(n):
            await limiter.acquire(tokens)
            seen.append(time.monotonic() - started)
        return seen

    by_requests = asyncio.run(times(RateLimiter(rpm=600), 6, 10))  # one every 0.1 s
    assert by_requests[-1] == pytest.approx(0.5, abs=0.08)
    by_tokens = asyncio.run(times(RateLimiter(tpm=60_000), 4, 200))  # 200 tokens = 0.2 s each
    assert by_tokens[-1] == pytest.approx(0.6, abs=0.08)


class VirtualTime:
    """A clock that moves only when someone sleeps: a minute of rate limiting checked in milliseconds."""

    def __init__(self):
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def test_rpm_holds_over_any_20_second_window_with_requests_in_parallel():
    """120 requests per minute, 8 callers at once for 46 requests: at most 40 (+1 for the first moment) in any
    20 s, and the limit is used rather than undershot."""
    virtual = VirtualTime()
    limiter = RateLimiter(rpm=120, clock=virtual.clock, sleep=virtual.sleep)
    starts = []

    async def caller(count):
        for _ in range(count):
            await limiter.acquire(10)
            starts.append(virtual.now)
            await virtual.sleep(0.3)  # the request's own latency

    async def main():
        await asyncio.gather(*(caller(6) for _ in range(7)), caller(4))

    asyncio.run(main())
    arrivals = sorted(starts)
    assert len(arrivals) == 46
    assert arrivals[-1] - arrivals[0] >= 45 * 0.5 - 1e-9  # one every 0.5 s
    for i, start in enumerate(arrivals):
        in_window = sum(1 for t in arrivals[i:] if t < start + 20)
        assert in_window <= 41, f"{in_window} requests in the 20 s from request {i}"


@pytest.mark.slow
def test_generate_spaces_requests_by_rpm(server, tmp_path, monkeypatch):
    """The run's requests go through the limiter: 1,200 per minute over 11 requests takes at least 0.5 s.
    The spacing is read where the limiter lets each request go: arrivals at the server add the
    machine's scheduling jitter to each gap (one gap came out at 44 ms on a busy machine)."""
    granted = []
    acquire = RateLimiter.acquire

    async def recorded(self, tokens):
        await acquire(self, tokens)
        granted.append(time.monotonic())
    monkeypatch.setattr(RateLimiter, "acquire", recorded)
    config = run_config(server, tmp_path, lang="en", num_instructions=10_000, concurrency=8, rpm=1200,
                        max_requests=11)
    with pytest.raises(RunStopped, match="max-requests"):
        generate(config)
    arrivals = sorted(r.received for r in model_requests(server))
    assert len(arrivals) == 11 and arrivals[-1] - arrivals[0] >= 0.49
    assert len(granted) == 11 and all(b - a >= 0.045 for a, b in zip(granted, granted[1:]))


@pytest.mark.slow
def test_a_429_pauses_every_request(server, fake_model, tmp_path):
    server.responder = lambda request: Reply(text=fake_model(request), delay=0.2)
    server.script(Reply(status=429, headers={"Retry-After": "1.5"}))
    generate(run_config(server, tmp_path, lang="en", num_instructions=4, concurrency=4, requests_per_round=4))
    arrivals = sorted(r.received for r in model_requests(server))
    refused_at = arrivals[0]
    later = [t for t in arrivals[4:]]  # the first 4 were in flight together
    assert later and min(later) >= refused_at + 1.4


@pytest.mark.slow
def test_a_used_up_limit_header_pauses_until_its_reset(server, fake_model, tmp_path):
    first = {"done": False}

    def answer(request):
        if not first["done"]:
            first["done"] = True
            return Reply(text=fake_model(request), headers={"x-ratelimit-remaining-requests": "0",
                                                            "x-ratelimit-reset-requests": "1.5s"})
        return fake_model(request)

    server.responder = answer
    generate(run_config(server, tmp_path, lang="en", num_instructions=3, concurrency=1))
    arrivals = sorted(r.received for r in model_requests(server))
    assert arrivals[1] - arrivals[0] >= 1.4
