"""Staying under a provider's rate limits, shared by every request of a run.

``--rpm`` and ``--tpm`` space requests out (a token bucket with no burst: each request
reserves the next free moment for its requests and its estimated tokens), so a run does
not bounce off 429s. A 429 pauses the whole client, not only the request that got it,
and a provider's ``x-ratelimit-remaining-*`` / ``x-ratelimit-reset-*`` headers saying a
limit is used up pause it until the reset; no pause is longer than MAX_PAUSE. A provider's
limits are per endpoint and key, so one limiter serves every stage sent there (the judge too).
"""

from __future__ import annotations

import asyncio
import re
import time

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_PAUSE = 600.0  # the longest wait a Retry-After or a reset header gets: 10 minutes


class RateLimiter:
    """``clock`` and ``sleep`` are the time it keeps; tests pass a virtual pair to check minutes in milliseconds."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None, clock=time.monotonic, sleep=asyncio.sleep):
        self.rpm, self.tpm, self._clock, self._sleep = rpm, tpm, clock, sleep
        self._next_request = self._next_token = self._paused_until = 0.0

    async def acquire(self, tokens: int) -> None:
        """Wait until one more request of about ``tokens`` tokens stays under the limits."""
        while True:
            now = self._clock()
            start = max(now, self._paused_until)
            if self.rpm:
                start = max(start, self._next_request)
            if self.tpm:
                start = max(start, self._next_token)
            if start <= now:
                break
            await self._sleep(start - now)
        if self.rpm:
            self._next_request = max(self._next_request, now) + 60.0 / self.rpm
        if self.tpm:
            self._next_token = max(self._next_token, now) + tokens * 60.0 / self.tpm

    def settle(self, estimated: int, actual: int) -> None:
        """Correct a request's token reservation once its usage is known."""
        if self.tpm:
            self._next_token += (actual - estimated) * 60.0 / self.tpm

    def pause(self, seconds: float) -> None:
        """No request starts for this long (a 429, or a limit the provider says is used up)."""
        self._paused_until = max(self._paused_until, self._clock() + min(max(seconds, 0.0), MAX_PAUSE))

    def observe(self, headers) -> None:
        """Pause until the reset when the provider's headers say a limit is used up."""
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            reset = headers.get(f"x-ratelimit-reset-{kind}")
            if remaining is not None and reset is not None and _number(remaining) == 0:
                self.pause(parse_duration(reset))


def parse_duration(text: str) -> float:
    """``"6m0s"``, ``"1.5s"``, ``"20ms"`` or plain seconds, as OpenAI-style reset headers give them."""
    text = str(text).strip()
    number = _number(text)
    if number is not None:
        return number
    return sum(float(value) * _UNITS[unit] for value, unit in _DURATION.findall(text))


def _number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
