"""The model endpoint, through the openai SDK's async client.

Transient faults (429, 5xx, timeouts, dropped connections, unreadable bodies) are
retried with exponential back-off and jitter, honouring Retry-After; after the retry
budget the request fails with a reason and the run goes on. Authentication,
permission, not-found and bad-request errors stop the run: retrying cannot fix them.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass

import openai
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

_KEY_LIKE = re.compile(r"\b(sk|key|tok)-[A-Za-z0-9_*\-]{3,}")
MAX_RETRY_AFTER = 120.0
MAX_BACKOFF = 60.0


class FatalAPIError(RuntimeError):
    """The endpoint refuses the run (bad key, no access, unknown model, bad request)."""


class RequestFailed(RuntimeError):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


def redact(text: str, secret: str | None) -> str:
    """Remove the API key, and anything shaped like one, from text meant for people or files."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)


class ModelClient:
    def __init__(self, *, base_url: str, api_key: str | None, model: str, api: str, concurrency: int,
                 timeout: float, max_retries: int, retry_wait: float):
        self.base_url, self.model, self.api = base_url, model, api
        self._secret = api_key
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "no-key", timeout=timeout,
                                          max_retries=0)
        self._limit = asyncio.Semaphore(concurrency)
        self._max_retries, self._retry_wait = max_retries, retry_wait
        self.retries: Counter[str] = Counter()

    async def close(self) -> None:
        await self._client.close()

    async def complete(self, prompt: str, *, max_tokens: int, temperature: float, top_p: float,
                       stop: list[str] | None = None) -> Completion:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            before_sleep=lambda state: self.retries.update([_reason(state.outcome.exception())]),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with self._limit:
                        return await self._send(prompt, max_tokens, temperature, top_p, stop)
        except openai.APIStatusError as exc:
            if not _is_transient(exc):
                raise FatalAPIError(self._explain(exc)) from None
            raise RequestFailed(_reason(exc), redact(_message(exc), self._secret)) from None
        except (openai.APIConnectionError, openai.APIResponseValidationError, json.JSONDecodeError, _Unreadable) as exc:
            raise RequestFailed(_reason(exc), redact(str(exc), self._secret)) from None

    async def _send(self, prompt, max_tokens, temperature, top_p, stop) -> Completion:
        params = dict(model=self.model, max_tokens=max_tokens, temperature=temperature, top_p=top_p)
        if stop:
            params["stop"] = stop
        if self.api == "chat":
            response = await self._client.chat.completions.create(
                messages=[{"role": "user", "content": prompt}], **params)
        else:
            response = await self._client.completions.create(prompt=prompt, **params)
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):
            raise _Unreadable(f"the response is not a completion object: {str(response)[:200]!r}")
        if not choices:
            raise RequestFailed("no_choices", "the response had no choices")
        choice = choices[0]
        text = choice.message.content if self.api == "chat" else choice.text
        usage = getattr(response, "usage", None)
        completion = Completion(text or "", choice.finish_reason,
                                getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)
        if choice.finish_reason == "content_filter":
            raise RequestFailed("content_filter", "the endpoint withheld the response")
        if not completion.text.strip():
            raise RequestFailed("empty_content", "the response text was empty")
        return completion

    def _wait(self, state) -> float:
        retry_after = _retry_after(state.outcome.exception())
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        backoff = min(MAX_BACKOFF, self._retry_wait * 2 ** (state.attempt_number - 1))
        return backoff + random.uniform(0, self._retry_wait)

    def _explain(self, exc: openai.APIStatusError) -> str:
        hints = {
            401: "the API key was refused; set OPENAI_API_KEY (or --api-key) to a valid key",
            403: "the API key has no access to this model or endpoint",
            404: f"model {self.model!r} or the endpoint path was not found; check --model and --base-url",
        }
        hint = hints.get(exc.status_code, "the endpoint rejected the request")
        return redact(f"{exc.status_code} from {self.base_url}: {hint} ({_message(exc)})", self._secret)


class _Unreadable(RuntimeError):
    """A 200 response whose body is not a completion (HTML from a proxy, plain text...)."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError, json.JSONDecodeError,
                            _Unreadable))


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, openai.APIStatusError):
        return "rate_limited" if exc.status_code == 429 else f"http_{exc.status_code}"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error"
    return "unreadable_response"


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        body = body.get("message", body)
    return str(body or exc.message)[:300]


def _retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None
