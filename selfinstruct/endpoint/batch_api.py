"""A provider's Batch API through the openai SDK: an input file up, a batch made, polled, cancelled,
found again, and its output and error files down; and the two file formats.

An input line is one request (``custom_id`` = our key, ``body`` = what would be posted). An output
or error line is read into one LineResult: an answer (read exactly as an online answer is), a
failure (that request's counted failure, as online), or unanswered (the batch expired or was
cancelled first: the request is sent again). Transient faults of these calls (429, 5xx, timeouts,
dropped connections) are retried with back-off, honouring Retry-After; a refusal that retrying
cannot fix (401, 403, a missing path) is FatalAPIError.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import openai

from selfinstruct.config import redact_url
from selfinstruct.endpoint.client import (ANSWER_TYPES, CONNECT_TIMEOUT, PATHS, Completion, FatalAPIError,
                                          RequestFailed, Unreadable, Usage, backoff, completion_of, message_of,
                                          redact, retry_after, unreachable)
from selfinstruct.endpoint.ratelimit import MAX_PAUSE
from selfinstruct.errors import StoppedEarly

WINDOW = "24h"  # the completion window every provider listed in the README takes
MB = 1_000_000
# The documented limits of one input file: (requests, bytes). Others get the smallest listed.
LIMITS = {
    "api.openai.com": (50_000, 200 * MB),
    "dashscope.aliyuncs.com": (50_000, 100 * MB),
    "dashscope-intl.aliyuncs.com": (50_000, 100 * MB),
    "api.together.xyz": (50_000, 100 * MB),
}
DEFAULT_LIMITS = (50_000, 100 * MB)
PATIENT_TRIES = 40  # polls and downloads: about 35 minutes of a provider out of reach before the run stops
ENDED = ("completed", "expired", "cancelled", "failed")
UNANSWERED = ("batch_expired", "batch_cancelled")  # error codes of lines the batch never got to


class BatchUnavailable(StoppedEarly, RuntimeError):
    """The provider's batch calls kept failing (or it kept losing batches): the run stops, resumably."""


class TooLarge(RuntimeError):
    """The provider refused an input file for its size."""


def limits_for(base_url: str) -> tuple[int, int]:
    return LIMITS.get(urlsplit(base_url).hostname or "", DEFAULT_LIMITS)


def input_line(custom_id: str, api: str, body: dict) -> bytes:
    return (json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1" + PATHS[api], "body": body},
                       ensure_ascii=False) + "\n").encode("utf-8")


@dataclass
class LineResult:
    completion: Completion | None = None
    failure: RequestFailed | None = None  # None for both: unanswered, to be sent again


def read_results(data: bytes, api: str, prompts: dict[str, str]) -> dict[str, LineResult]:
    """The lines of an output or error file, by custom_id (lines naming no request of ``prompts`` are left
    out: untrusted input). A line that cannot be read is that request's failure, never a crash."""
    results: dict[str, LineResult] = {}
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        if custom_id not in prompts:
            continue
        results[custom_id] = _result(line, api, prompts[custom_id])
    return results


def _result(line: dict, api: str, prompt: str) -> LineResult:
    error = line.get("error") if isinstance(line.get("error"), dict) else None
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    if error and error.get("code") in UNANSWERED:
        return LineResult()
    status = response.get("status_code") if response else None
    body = response.get("body") if response else None
    if status == 200 and isinstance(body, dict):
        usage = Usage()
        try:
            completion = completion_of(ANSWER_TYPES[api].construct(**body), api, prompt, usage)
        except RequestFailed as exc:
            exc.usage = usage
            return LineResult(failure=exc)
        except (Unreadable, TypeError, ValueError) as exc:
            return LineResult(failure=failed("unreadable_response", str(exc)[:300], usage))
        completion.usage = usage
        return LineResult(completion=completion)
    if isinstance(status, int):
        message = body.get("error", {}).get("message", "") if isinstance(body, dict) and isinstance(
            body.get("error"), dict) else ""
        reason = "rate_limited" if status == 429 else f"http_{status}"
        return LineResult(failure=failed(reason, str(message or (error or {}).get("message", ""))[:300]))
    code = str((error or {}).get("code") or "batch_error")
    return LineResult(failure=failed(code, str((error or {}).get("message", ""))[:300]))


def failed(reason: str, detail: str, usage: Usage | None = None) -> RequestFailed:
    """A request's failure that no attempt of ours made: a batch's line, or a batch's end."""
    failure = RequestFailed(reason, detail)
    failure.retries, failure.usage = [], usage or Usage()
    return failure


class BatchAPI:
    """One endpoint's files and batches. ``notify`` hears the waits a 429 on submit causes."""

    def __init__(self, *, base_url: str, api_key: str | None, model: str, api: str, timeout: float,
                 max_retries: int, retry_wait: float, secrets: tuple[str, ...] = (),
                 notify: Callable[[str], None] | None = None):
        self.base_url, self.model, self.api = base_url, model, api
        self.limits = limits_for(base_url)
        self._secrets = (api_key, *secrets)
        self._max_retries, self._retry_wait = max_retries, retry_wait
        self._notify = notify or (lambda line: None)
        self._timeout = max(timeout, 600.0)
        self.reached = False  # the endpoint has answered (any status): a connection failure is then waited out
        parts = urlsplit(base_url)
        self._client = openai.AsyncOpenAI(
            base_url=urlunsplit(parts._replace(query="")), default_query=dict(parse_qsl(parts.query)) or None,
            api_key=api_key or "no-key", timeout=openai.Timeout(self._timeout, connect=CONNECT_TIMEOUT), max_retries=0)

    async def close(self) -> None:
        await self._client.close()

    async def upload(self, data: bytes, name: str) -> str:
        """The id of an uploaded input file; TooLarge if the provider refuses its size."""
        file = await self._call("upload an input file", self._client.files.create,
                                file=(name, data, "application/jsonl"), purpose="batch", too_large=True)
        return file.id

    async def create(self, file_id: str, name: str) -> openai.types.Batch:
        return await self._call("submit a batch", self._client.batches.create, input_file_id=file_id,
                                endpoint="/v1" + PATHS[self.api], completion_window=WINDOW,
                                metadata={"selfinstruct": name})

    async def check(self) -> None:
        """That the endpoint has a Batch API (FatalAPIError if not), before anything is sent or paid for."""
        await self._call("list batches", self._client.batches.list, limit=1)

    async def retrieve(self, batch_id: str) -> openai.types.Batch | None:
        """The batch's state, or None if the provider no longer knows it (404). A batch may take a day, so
        a provider out of reach is waited for much longer than a submit is (PATIENT_TRIES)."""
        return await self._call("poll a batch", self._client.batches.retrieve, batch_id, missing_ok=True,
                                tries=PATIENT_TRIES)

    async def cancel(self, batch_id: str) -> openai.types.Batch | None:
        return await self._call("cancel a batch", self._client.batches.cancel, batch_id, missing_ok=True)

    async def find(self, file_id: str) -> openai.types.Batch | None:
        """The batch made from an input file, if a submit that was cut off did reach the provider."""
        async def search():
            async for batch in self._client.batches.list(limit=100):
                if batch.input_file_id == file_id:
                    return batch
            return None
        return await self._call("list batches", search)

    async def download(self, file_id: str) -> bytes:
        content = await self._call("download a batch's answers", self._client.files.content, file_id,
                                   tries=PATIENT_TRIES)
        return content.content

    async def _call(self, what: str, call, *args, too_large: bool = False, missing_ok: bool = False,
                    tries: int = 0, **kwargs):
        tries = max(tries, self._max_retries + 1)
        for attempt in range(tries):
            try:
                answer = await call(*args, **kwargs)
                self.reached = True
                return answer
            except openai.APIStatusError as exc:
                self.reached = True
                status = exc.status_code
                if too_large and (status == 413 or status == 400 and _about_size(exc)):
                    raise TooLarge(self._clean(exc)) from None
                if missing_ok and status == 404:
                    return None
                if status not in (408, 409, 429) and status < 500:
                    raise FatalAPIError(self._refused(what, exc)) from None
                reason, wait = f"{status}", retry_after(exc)
            except (openai.APIConnectionError, openai.APIResponseValidationError, json.JSONDecodeError) as exc:
                if not self.reached and isinstance(exc, openai.APIConnectionError) and attempt >= 1:
                    raise unreachable(self.base_url, exc, self._timeout, self._secrets) from None
                reason, wait = type(exc).__name__, None
            if attempt == tries - 1:
                break
            wait = min(wait, MAX_PAUSE) if wait is not None else backoff(self._retry_wait, attempt)
            self._notify(f"could not {what} ({reason}); trying again in {wait:.0f} s")
            await asyncio.sleep(wait)
        raise BatchUnavailable(redact(f"could not {what} at {redact_url(self.base_url)} after {tries} tries "
                                      f"({reason}); resume the run later", *self._secrets))

    def _refused(self, what: str, exc: openai.APIStatusError) -> str:
        none = "this endpoint has no Batch API (files and batches); send one by one: drop --batch (resume --no-batch)"
        hint = {401: "the API key was refused; set OPENAI_API_KEY (or --api-key) to a valid key",
                403: "the API key has no access to the Batch API here", 404: none, 405: none}.get(
            exc.status_code, "the provider refused it")
        return self._clean_text(f"{exc.status_code} from {redact_url(self.base_url)} when trying to {what}: "
                                f"{hint} ({message_of(exc)})")

    def _clean(self, exc: openai.APIStatusError) -> str:
        return self._clean_text(message_of(exc))

    def _clean_text(self, text: str) -> str:
        return redact(text, *self._secrets)


def _about_size(exc: openai.APIStatusError) -> bool:
    text = message_of(exc).lower()
    return any(word in text for word in ("size", "large", "exceed", "limit"))
