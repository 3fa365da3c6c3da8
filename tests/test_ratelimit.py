"""Rate limits: --rpm/--tpm space requests out; a 429 or a used-up limit header pauses every request."""

from __future__ import annotations

import asyncio
import time

import pytest
from openai_stub import Reply
from test_pipeline import run_config

from selfinstruct import RunStopped, generate
from selfinstruct.endpoint.ratelimit import RateLimiter, parse_duration


def model_requests(server):
    return [r for r in server.requests if r.endpoint in ("chat", "completion")]


@pytest.mark.parametrize("text, seconds", [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1.5", 1.5),
                                           ("2h1m", 7260.0), ("0.5s", 0.5)])
def test_reset_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


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


def test_rpm_holds_over_a_20_second_window(server, tmp_path):
    """120 requests per minute: at most 40 (+1 for the first moment) in any 20 s."""
    config = run_config(server, tmp_path, lang="en", num_instructions=10_000, concurrency=8, rpm=120,
                        max_requests=46)
    with pytest.raises(RunStopped, match="max-requests"):
        generate(config)
    arrivals = sorted(r.received for r in model_requests(server))
    assert len(arrivals) == 46 and arrivals[-1] - arrivals[0] >= 20
    for i, start in enumerate(arrivals):
        in_window = sum(1 for t in arrivals[i:] if t < start + 20)
        assert in_window <= 41, f"{in_window} requests in the 20 s from request {i}"


def test_a_429_pauses_every_request(server, fake_model, tmp_path):
    server.responder = lambda request: Reply(text=fake_model(request), delay=0.2)
    server.script(Reply(status=429, headers={"Retry-After": "1.5"}))
    generate(run_config(server, tmp_path, lang="en", num_instructions=4, concurrency=4, requests_per_round=4))
    arrivals = sorted(r.received for r in model_requests(server))
    refused_at = arrivals[0]
    later = [t for t in arrivals[4:]]  # the first 4 were in flight together
    assert later and min(later) >= refused_at + 1.4


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
