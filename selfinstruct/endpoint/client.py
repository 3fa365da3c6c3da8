"""The model endpoint, through the openai SDK's async client.

Transient faults (408, 409, 429, 5xx, timeouts, dropped connections, unreadable
answers) are retried with exponential back-off and jitter, honouring Retry-After up to
MAX_PAUSE (the caller is told when a longer wait is cut short); after the retry budget
the request fails with a reason and the run goes on. ``timeout`` bounds a whole attempt,
connect to last byte: the SDK's own timeout is per read, which a server sending a byte
now and then never trips.
400, 413 and 422 refuse that one request: it fails at once (RequestFailed with
refused=True) and the run goes on. Other 4xx (401, 402, 403, 404, 405...) stop the
run with FatalAPIError: retrying cannot fix them. With --structured, an error that refuses the
request's response_format (structured.refuses_format) is FormatRefused at once, never retried.

An answer is unreadable (retried as "unreadable_response") if its body is not JSON
or not UTF-8, a choice or the chat message is not an object ("message": null),
the text is not a string, or the text holds a lone surrogate (U+D800-U+DFFF, which
cannot be written as UTF-8). Null content (chat "content": null, completion
"text": null) is a legitimate empty answer: "empty_content", not retried. Usage
counts that are missing or not non-negative integers count as 0.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import random
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import openai
from openai.types import Completion as TextCompletion
from openai.types.chat import ChatCompletion
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from selfinstruct.endpoint.tokens import estimate_tokens
from selfinstruct.config import redact_url
from selfinstruct.endpoint.ratelimit import MAX_PAUSE, RateLimiter
from selfinstruct.endpoint.structured import refusal_hint, refuses_format
from selfinstruct.errors import EndpointRefused, StoppedEarly

_KEY_LIKE = re.compile(r"\b(sk|key|tok)-[A-Za-z0-9_*\-]{3,}")
_SURROGATE = re.compile("[\ud800-\udfff]")
REFUSED_STATUSES = (400, 413, 422)  # the endpoint refuses this one request
MAX_BACKOFF = 60.0
CONNECT_TIMEOUT = 15.0  # seconds to open a connection: a host that takes longer is not answering
UNREACHABLE_AFTER = 2  # attempts that fail to connect, while the endpoint never answered, before it is unreachable
CONNECTIONS_PER_POOL = 16


class FatalAPIError(EndpointRefused, RuntimeError):
    """The endpoint refuses the run (bad key, no credit, no access, unknown model or path)."""


class Unreachable(StoppedEarly, RuntimeError):
    """The endpoint never answered and cannot be connected to: the run stops at once, saying why."""


class FormatRefused(FatalAPIError):
    """The endpoint does not take the response_format that --structured sends (or not its schema)."""


class Abandoned(RuntimeError):
    """A failing request stopped retrying because the run is stopping; it was never answered.
    retries: the reason of each attempt it made (all failed); usage: their tokens."""

    def __init__(self, retries: list[str], usage: Usage):
        super().__init__("abandoned")
        self.retries, self.usage = retries, usage


class RequestFailed(RuntimeError):
    """One request failed and the run goes on. refused: the endpoint rejected this very
    request (400/413/422), rather than a transient fault outlasting the retries.
    retries: the reason of each retried attempt before it failed."""

    def __init__(self, reason: str, detail: str = "", *, refused: bool = False):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.refused = reason, detail, refused
        self.retries: list[str] = []
        self.usage = Usage()


@dataclass
class Usage:
    """Tokens a request used over all its attempts; estimated where an answer reported none."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    usage: Usage = field(default_factory=Usage)
    retries: list[str] = field(default_factory=list)  # the reason of each retried attempt before it


def redact(text: str, *secrets: str | None) -> str:
    """Remove the API key (and other secrets), and anything shaped like a key, from text meant for
    people or files; lone surrogates become backslash escapes so that the text can be written as UTF-8."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _KEY_LIKE.sub("[redacted]", text)


PATHS = {"chat": "/chat/completions", "completion": "/completions"}
ANSWER_TYPES = {"chat": ChatCompletion, "completion": TextCompletion}


def request_body(model: str, api: str, prompt: str, *, max_tokens: int, temperature: float, top_p: float,
                 stop: list[str] | None = None, response_format: dict | None = None) -> dict:
    """The JSON body of one request, as it is posted or written into a batch's input file."""
    body = dict(model=model, max_tokens=max_tokens, temperature=temperature, top_p=top_p)
    if stop:
        body["stop"] = stop
    if response_format:
        body["response_format"] = response_format
    if api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return body


def completion_of(response: object, api: str, prompt: str, usage: Usage) -> Completion:
    """The answer in a completion object (its tokens added to ``usage``): RequestFailed for no choices or a
    withheld or empty answer, Unreadable for a malformed one. Online and batch answers alike."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list):
        raise Unreadable(f"the response is not a completion object: {str(response)[:200]!r}")
    if not choices:
        _add_usage(usage, response, prompt, "")
        raise RequestFailed("no_choices", "the response had no choices")
    choice = choices[0]
    try:
        text = _text_of(choice, api)
    except Unreadable:
        _add_usage(usage, response, prompt, "")
        raise
    _add_usage(usage, response, prompt, text or "")
    finish_reason = getattr(choice, "finish_reason", None)
    completion = Completion(text or "", finish_reason if isinstance(finish_reason, str) else None)
    if completion.finish_reason == "content_filter":
        raise RequestFailed("content_filter", "the endpoint withheld the response")
    if not completion.text.strip():
        raise RequestFailed("empty_content", "the response text was empty")
    return completion


def _text_of(choice, api: str) -> str | None:
    """The text of a choice (None for null content), or Unreadable for a malformed one."""
    if not isinstance(choice, openai.BaseModel):
        raise Unreadable(f"a choice is not an object: {str(choice)[:200]!r}")
    if api == "chat":
        message = getattr(choice, "message", None)
        if not isinstance(message, openai.BaseModel):
            raise Unreadable(f"the choice's message is not an object: {str(message)[:200]!r}")
        text = getattr(message, "content", None)
    else:
        text = getattr(choice, "text", None)
    if text is not None and not isinstance(text, str):
        raise Unreadable(f"the response text is a {type(text).__name__}, not a string")
    if text and _SURROGATE.search(text):
        raise Unreadable("the response text holds a lone surrogate (not valid Unicode)")
    return text


class ModelClient:
    """One endpoint and model. Concurrency is the caller's: it decides when a request may start."""

    def __init__(self, *, base_url: str, api_key: str | None, model: str, api: str, timeout: float,
                 max_retries: int, retry_wait: float, secrets: tuple[str, ...] = (),
                 limiter: RateLimiter | None = None, connections: int = 1,
                 notify: Callable[[str], None] | None = None):
        self.base_url, self.model, self.api = base_url, model, api
        self._timeout, self._notify, self._told_until = timeout, notify or (lambda line: None), 0.0
        self.limiter = limiter or RateLimiter()
        self._secrets = (api_key, *secrets)
        # The SDK appends paths to base_url, so a query (?api-key=...) must travel as default_query.
        parts = urlsplit(base_url)
        # Every response (answers and errors) shows the limiter the provider's rate-limit headers.
        # httpx's connection pool scans all its connections for each request: past a few dozen
        # connections that costs more than the request, so requests spread over several small pools.
        self._clients = [openai.AsyncOpenAI(
            base_url=urlunsplit(parts._replace(query="")), default_query=dict(parse_qsl(parts.query)) or None,
            api_key=api_key or "no-key", timeout=openai.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"response": [self._observe]}))
            for _ in range(max(1, -(-connections // CONNECTIONS_PER_POOL)))]
        self._next_client = itertools.cycle(self._clients)
        self._max_retries, self._retry_wait = max_retries, retry_wait
        self.retries: Counter[str] = Counter()
        self.reached = False  # an HTTP response (any status) came back: the address and network are right

    async def close(self) -> None:
        for client in self._clients:
            await client.close()

    async def complete(self, prompt: str, *, max_tokens: int, temperature: float, top_p: float,
                       stop: list[str] | None = None, give_up: Callable[[], bool] = lambda: False,
                       sending: Callable[[], None] = lambda: None, response_format: dict | None = None) -> Completion:
        """The answer, after retrying transient faults. ``give_up`` is asked before each retry's wait and
        right before every attempt, the first included; ``sending`` is told of each attempt as it goes
        out, so that the caller can count (and budget) the HTTP requests sent. ``response_format`` (chat
        only, --structured) goes with the request; an endpoint refusing it raises FormatRefused at once."""
        retries: list[str] = []
        usage = Usage()

        def send_or_abandon(state) -> None:
            if give_up():
                raise Abandoned(retries, usage)
            sending()

        def count_retry(state) -> None:
            retries.append(_reason(state.outcome.exception()))
            self.retries[retries[-1]] += 1
            if give_up():
                raise Abandoned(retries, usage)
            if state.attempt_number >= UNREACHABLE_AFTER:
                self._check_reached(state.outcome.exception())

        def refuses(exc: BaseException) -> bool:
            return (response_format is not None and isinstance(exc, openai.APIStatusError)
                    and refuses_format(exc.status_code, message_of(exc)))

        retrying = AsyncRetrying(stop=stop_after_attempt(self._max_retries + 1), wait=self._wait,
                                 retry=retry_if_exception(lambda exc: _is_transient(exc) and not refuses(exc)),
                                 before=send_or_abandon, before_sleep=count_retry, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    completion = await self._send(prompt, max_tokens, temperature, top_p, stop, usage,
                                                  response_format)
                    completion.retries, completion.usage = retries, usage
                    return completion
        except openai.APIStatusError as exc:
            if refuses(exc):
                raise FormatRefused(redact(f"{exc.status_code} from {redact_url(self.base_url)}: the endpoint "
                                           f"refused response_format {response_format['type']} "
                                           f"({' '.join(message_of(exc).split())}); {refusal_hint(response_format)}",
                                           *self._secrets)) from None
            if not _is_transient(exc) and exc.status_code not in REFUSED_STATUSES:
                raise FatalAPIError(self._explain(exc)) from None
            failure = RequestFailed(_reason(exc), redact(message_of(exc), *self._secrets),
                                    refused=exc.status_code in REFUSED_STATUSES)
        except (openai.APIConnectionError, _TimedOut, *_UNREADABLE) as exc:
            self._check_reached(exc)
            failure = RequestFailed(_reason(exc), redact(str(exc), *self._secrets))
        except RequestFailed as exc:
            failure = exc
        failure.retries, failure.usage = retries, usage
        raise failure

    async def _send(self, prompt, max_tokens, temperature, top_p, stop, usage: Usage,
                    response_format: dict | None = None) -> Completion:
        """One attempt, within the rate limits; its tokens settle the limiter's estimate."""
        estimate = estimate_tokens(prompt) + max_tokens
        await self.limiter.acquire(estimate)
        before = usage.prompt_tokens + usage.completion_tokens
        try:
            async with asyncio.timeout(self._timeout):
                return await self._attempt(prompt, max_tokens, temperature, top_p, stop, usage, response_format)
        except TimeoutError:
            raise _TimedOut(f"Request timed out: no complete answer within {self._timeout:g} s") from None
        finally:
            self.limiter.settle(estimate, usage.prompt_tokens + usage.completion_tokens - before)

    async def _observe(self, response) -> None:
        self.reached = True
        self.limiter.observe(response.headers)

    def _check_reached(self, exc: BaseException | None) -> None:
        """Unreachable if the endpoint never answered this client and a connection to it failed again: a
        wrong address, a server not running, no network. Once it has answered, failures are retried."""
        if self.reached or not isinstance(exc, (openai.APIConnectionError, _TimedOut)):
            return
        raise unreachable(self.base_url, exc, self._timeout, self._secrets)

    async def _attempt(self, prompt, max_tokens, temperature, top_p, stop, usage: Usage,
                       response_format: dict | None = None) -> Completion:
        # The body is plain JSON already: posting it skips the SDK's per-request type transform,
        # about a fifth of the client's CPU at high concurrency; answers are parsed as usual.
        body = request_body(self.model, self.api, prompt, max_tokens=max_tokens, temperature=temperature,
                            top_p=top_p, stop=stop, response_format=response_format)
        response = await next(self._next_client).post(PATHS[self.api], body=body, cast_to=ANSWER_TYPES[self.api])
        return completion_of(response, self.api, prompt, usage)

    def _wait(self, state) -> float:
        """The back-off before a retry; a 429 pauses every request, not only this one."""
        exc = state.outcome.exception()
        asked = retry_after(exc)
        if asked is not None:
            wait = min(asked, MAX_PAUSE)
            if asked > MAX_PAUSE and time.monotonic() >= self._told_until:
                self._told_until = time.monotonic() + MAX_PAUSE  # once, not once per request in flight
                self._notify(f"the endpoint asked to wait {asked:.0f} s (Retry-After); waiting the maximum, "
                             f"{MAX_PAUSE:.0f} s")
        else:
            wait = backoff(self._retry_wait, state.attempt_number - 1)
        if isinstance(exc, openai.RateLimitError):
            self.limiter.pause(wait)
        return wait

    def _explain(self, exc: openai.APIStatusError) -> str:
        hints = {
            401: "the API key was refused; set OPENAI_API_KEY (or --api-key) to a valid key",
            402: "the account has no credit or balance left; top it up with the provider",
            403: "the API key has no access to this model or endpoint",
            404: f"model {self.model!r} or the endpoint path was not found; check --model and --base-url",
        }
        hint = hints.get(exc.status_code, "the endpoint rejected the request")
        where = redact_url(self.base_url)  # a query value may be a signature (?sig=), whatever its name
        return redact(f"{exc.status_code} from {where}: {hint} ({message_of(exc)})", *self._secrets)


class Unreadable(RuntimeError):
    """A 200 response whose body is not a completion (HTML from a proxy, plain text...)."""


class _TimedOut(RuntimeError):
    """An attempt outlasted ``timeout`` (a server trickling its answer): a timeout, as the SDK's own."""


# 200 answers that cannot be read; UnicodeDecodeError: the SDK decodes a JSON body as strict UTF-8.
_UNREADABLE = (openai.APIResponseValidationError, json.JSONDecodeError, UnicodeDecodeError, Unreadable)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, _TimedOut, *_UNREADABLE))


def _add_usage(total: Usage, response: object, prompt: str, text: str) -> None:
    """Add an answer's usage (billed even when the answer is unusable), or an estimate if it has none."""
    reported = getattr(response, "usage", None)
    prompt_tokens, completion_tokens = _count(reported, "prompt_tokens"), _count(reported, "completion_tokens")
    if not prompt_tokens and not completion_tokens:
        prompt_tokens, completion_tokens = estimate_tokens(prompt), estimate_tokens(text)
        total.estimated = True
    total.prompt_tokens += prompt_tokens
    total.completion_tokens += completion_tokens


def _count(usage: object, name: str) -> int:
    """A usage token count; 0 if usage or the count is missing or not a non-negative integer."""
    value = getattr(usage, name, None)
    return value if type(value) is int and value >= 0 else 0


def backoff(first: float, retry: int) -> float:
    """The wait before retry number ``retry`` (0 for the first): doubling from ``first``, at most MAX_BACKOFF,
    with up to ``first`` of jitter so that requests failing together do not retry together."""
    return min(MAX_BACKOFF, first * 2 ** retry) + random.uniform(0, first)


def unreachable(base_url: str, exc: BaseException, timeout: float, secrets=()) -> Unreachable:
    """The one line for an endpoint that cannot be connected to: host, cause, and what to check."""
    cause, hint = _connection_cause(exc, timeout)
    where = urlsplit(base_url)
    host = f"{where.hostname}:{where.port or (443 if where.scheme == 'https' else 80)}"
    return Unreachable(redact(f"cannot reach {host} ({cause}); {hint} (endpoint {redact_url(base_url)})",
                              *secrets))


def _connection_cause(exc: BaseException, timeout: float) -> tuple[str, str]:
    """What stopped a connection, in words, and what to check, from the exception and its causes."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, (openai.APITimeoutError, _TimedOut, TimeoutError)) for e in chain) or "timed out" in text:
        return (f"no answer within {min(timeout, CONNECT_TIMEOUT):g} s to connect, or {timeout:g} s to answer",
                "check the address, the network, a firewall or proxy between, and that the server is up")
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in text:
        return "connection refused", "nothing listens there: check the host and port, and that the server is running"
    if any(isinstance(e, socket.gaierror) for e in chain) or "name or service not known" in text \
            or "name resolution" in text or "nodename nor servname" in text:
        return "name not resolved", "check the host name, and this machine's network and DNS"
    if any(isinstance(e, ssl.SSLError) for e in chain) or "ssl" in text or "tls" in text:
        return "TLS error", "check https:// or http:// in the URL, and the server's certificate"
    return "connection failed", "check the address and the network"


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, openai.APIStatusError):
        return "rate_limited" if exc.status_code == 429 else f"http_{exc.status_code}"
    if isinstance(exc, (openai.APITimeoutError, _TimedOut)):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error"
    return "unreadable_response"


def message_of(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        body = body.get("message", body)
    return str(body or exc.message)[:300]


def retry_after(exc: BaseException | None) -> float | None:
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
