"""Requests sent through a provider's Batch API (--batch), for the ledger.

The loop asks as it always does; here a request waits instead of going out. Once the run has
settled (SETTLE_TURNS turns of the event loop in which no request joined: every candidate that can
go on is waiting for an answer), everything waiting goes in one batch per endpoint and model, split
at the provider's limits and cut to what the budgets allow. So a batch holds exactly the requests
that do not depend on answers still missing.

The batches journal (batches.jsonl) says, before anything else happens, what a batch holds (its
input file is kept under batches/), then the provider's file id, then its batch id, then that it
ended (its output and error files kept beside the input). A resumed session reads it: batches in
flight are polled, not sent again; a submit cut off before its batch id was journaled is found by
its file id; the answers of ended batches are read from their files. A request that a batch left
unanswered (it expired, was cancelled or was lost) goes in the next one; after MAX_SENDS batches it
fails (batch_expired), so nothing is sent forever.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from selfinstruct.endpoint.batch_api import ENDED, MB, BatchAPI, BatchUnavailable, LineResult, TooLarge, failed, \
    input_line, read_results
from selfinstruct.config import redact_url
from selfinstruct.endpoint.call import Call
from selfinstruct.endpoint.client import Abandoned, Completion, FatalAPIError, Usage, request_body
from selfinstruct.errors import BadInput
from selfinstruct.store.journal import Journal, JournalError, write_atomic

SETTLE_TURNS = 50
POLL_FIRST, POLL_MAX = 0.5, 60.0  # seconds between polls: doubling from the first to the most
MAX_SENDS = 3  # batches a request may go in without being answered
MAX_LOST = 3  # batches the provider may lose (404 when polled) before the run stops
GROUPS = {False: "run", True: "judge"}


@dataclass
class Sent:
    """One batch: its requests (key -> prompt), where it stands at the provider."""

    name: str
    group: str
    prompts: dict[str, str]
    batch_id: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    shown: str = ""  # the last progress line, so that a line is printed only when it changes
    status: str = ""  # the provider's last word on it


class BatchesElsewhere(BadInput, RuntimeError):
    """A run's batches in flight are at another endpoint than the one given now."""


class Batcher:
    """``folder``: where batches.jsonl and batches/ live; ``apis``: by group ("run", "judge");
    ``fits(calls)``: how many of these calls, in order, the budgets let a batch hold, and whether the
    rest are never to be sent (the ledger stopped) or wait for a batch in flight to free its worst case."""

    def __init__(self, folder: Path, apis: dict[str, BatchAPI],
                 fits: Callable[[list[Call]], tuple[int, bool]] = lambda calls: (len(calls), False),
                 notify: Callable[[str], None] | None = None):
        self.folder, self.files = Path(folder), Path(folder) / "batches"
        self.journal = Journal(self.folder / "batches.jsonl")
        self.apis, self.fits = apis, fits
        self.notify = notify or (lambda line: None)
        self.pending: list[tuple[Call, asyncio.Future]] = []
        self.held: list[tuple[Call, asyncio.Future]] = []  # over the budgets until a batch in flight ends
        self.results: dict[str, LineResult] = {}
        self.running: dict[str, Sent] = {}  # key -> the batch in flight that holds it
        self.sends: Counter[str] = Counter()  # batches each key went in without an answer
        self.error: BaseException | None = None  # ends every request: a refusal, or batches that fail
        self.submitted = self.lost = 0
        self._names = 0
        self._flusher: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- the ledger's side --------------------------------------------------------------------

    async def complete(self, call: Call, sending: Callable[[], None]) -> Completion:
        """The answer to a call from a batch (one already running or ended, or the next one)."""
        sent_here = False
        while True:
            if self.error is not None:
                raise self.error
            result = self.results.pop(call.key, None)
            if result is not None and (result.completion or result.failure):
                if not sent_here:
                    sending()  # sent in an earlier session: that attempt counts here
                if result.failure:
                    raise result.failure
                return result.completion
            batch = self.running.get(call.key)
            if batch is not None:
                await batch.ended.wait()
                continue
            if self.sends[call.key] >= MAX_SENDS:
                raise failed("batch_expired", f"{MAX_SENDS} batches ended without answering it")
            future = asyncio.get_running_loop().create_future()
            self.pending.append((call, future))
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.ensure_future(self._flush())
            await future  # set once the call is in a submitted batch
            sending()
            sent_here = True

    async def _flush(self) -> None:
        while self.pending:
            seen = -1
            while seen != len(self.pending):
                seen = len(self.pending)
                for _ in range(SETTLE_TURNS):
                    await asyncio.sleep(0)
            waiting, self.pending = [(c, f) for c, f in self.pending if not f.done()], []
            if self.error is not None:
                self._fail(waiting, self.error)
                continue
            try:
                await self._send(waiting)
            except Exception as exc:  # noqa: BLE001 - every waiting request hears why
                if isinstance(exc, (FatalAPIError, BatchUnavailable, JournalError)):
                    self.error = exc
                self._fail(waiting + self.pending, exc)

    async def _send(self, waiting: list[tuple[Call, asyncio.Future]]) -> None:
        waiting.sort(key=lambda item: item[0].priority)
        allowed, stopped = self.fits([call for call, _ in waiting])
        if stopped:  # the ledger has stopped: they were never sent
            self._fail(waiting[allowed:], Abandoned([], Usage()))
        else:
            self.held += waiting[allowed:]
        # One batch per endpoint and model: the judge's requests join the run's when it is the same model.
        same = self.apis.get("judge") is self.apis.get("run")
        for group in GROUPS.values():
            calls = [(call, future) for call, future in waiting[:allowed]
                     if GROUPS[call.judge and not same] == group]
            api = self.apis.get(group)
            limit_requests, limit_bytes = api.limits if api else (0, 0)
            part, size = [], 0
            for call, future in calls:
                line = self._line(api, call)
                if part and (len(part) >= limit_requests or size + len(line) > limit_bytes):
                    await self._submit(group, part)
                    part, size = [], 0
                part.append((call, future, line))
                size += len(line)
            if part:
                await self._submit(group, part)

    def _line(self, api: BatchAPI, call: Call) -> bytes:
        body = request_body(api.model, api.api, call.prompt, max_tokens=call.max_tokens, temperature=call.temperature,
                            top_p=call.top_p, stop=call.stop, response_format=call.response_format)
        return input_line(call.key, api.api, body)

    async def _submit(self, group: str, part: list[tuple[Call, asyncio.Future, bytes]]) -> None:
        api, name = self.apis[group], self._new_name()
        data = b"".join(line for _, _, line in part)
        self.files.mkdir(parents=True, exist_ok=True)
        write_atomic(self.files / f"{name}.input.jsonl", data.decode("utf-8"))
        self._journal(event="input", name=name, group=group, requests=len(part), bytes=len(data),
                      endpoint=redact_url(api.base_url), model=api.model)
        try:
            file_id = await api.upload(data, f"selfinstruct-{name}.jsonl")
        except TooLarge as exc:
            self._journal(event="ended", name=name, status="refused")
            if len(part) == 1:
                part[0][1].set_exception(failed("too_large", f"alone it is more than the provider takes in a batch "
                                                              f"file ({exc})"))
                return
            api.limits = (api.limits[0], min(api.limits[1], len(data) // 2))
            self.notify(f"batch {name}: the provider refused its {_size(len(data))} input file as too large "
                        f"({exc}); sending it in two halves")
            half = len(part) // 2
            await self._submit(group, part[:half])
            await self._submit(group, part[half:])
            return
        self._journal(event="uploaded", name=name, file_id=file_id)
        batch = await api.create(file_id, name)
        self._journal(event="submitted", name=name, batch_id=batch.id)
        sent = Sent(name, group, {call.key: call.prompt for call, _, _ in part}, batch.id)
        self._running(sent)
        for call, future, _ in part:
            self.sends[call.key] += 1
            if not future.done():
                future.set_result(None)
        self.notify(f"batch {name}: {len(part):,} requests submitted ({batch.id})")

    # -- following batches ----------------------------------------------------------------------

    def _running(self, sent: Sent) -> None:
        self.submitted += 1
        for key in sent.prompts:
            self.running[key] = sent
        task = asyncio.ensure_future(self._follow(sent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, sent: Sent, cancel: bool = False) -> None:
        """Poll a batch until it ends, then take its answers; ``cancel``: ask the provider to cancel it first."""
        api, delay = self.apis[sent.group], POLL_FIRST
        try:
            batch = await api.cancel(sent.batch_id) if cancel else None
            while batch is None or batch.status not in ENDED:
                if batch is not None or not cancel:
                    await asyncio.sleep(delay)
                    delay = min(POLL_MAX, delay * 2)
                batch = await api.retrieve(sent.batch_id)
                if batch is None:
                    return self._lost(sent)
                self._progress(sent, batch)
            if batch.status == "failed":
                errors = "; ".join(f"{e.code}: {e.message}" for e in (batch.errors.data or [])[:3]) if batch.errors \
                    else "no reason given"
                self._journal(event="ended", name=sent.name, status="failed")
                self.error = FatalAPIError(f"the provider failed batch {sent.name} ({sent.batch_id}): {errors}; "
                                           "check --model and --max-tokens")
                return self._ended(sent, {})
            results: dict[str, LineResult] = {}
            for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
                if file_id:
                    data = await api.download(file_id)
                    write_atomic(self.files / f"{sent.name}.{kind}.jsonl", data.decode("utf-8", "replace"))
                    results.update(read_results(data, api.api, sent.prompts))
            if batch.status == "completed":  # a line it lost or garbled is that request's failure, not paid again
                for key in sent.prompts.keys() - results.keys():
                    results[key] = LineResult(failure=failed(
                        "missing_answer", "the batch completed without a readable line for this request"))
            self._journal(event="ended", name=sent.name, status=batch.status)
            sent.status = batch.status
            self._ended(sent, results)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever stops following a batch stops the run, never hangs it
            if isinstance(exc, OSError):
                exc = JournalError(f"cannot write {getattr(exc, 'filename', None) or self.files}: "
                                   f"{exc.strerror or exc}")
            self.error = exc
            sent.ended.set()  # its requests hear the error; the batch stays in flight at the provider
            self._fail(self.held, exc)

    def _progress(self, sent: Sent, batch) -> None:
        counts = batch.request_counts
        done = f" {counts.completed + counts.failed:,}/{counts.total:,}" if counts and counts.total else ""
        failed = f", {counts.failed:,} failed" if counts and counts.failed else ""
        line = f"batch {sent.name}: {batch.status}{done}{failed}"
        if line != sent.shown:
            sent.shown = line
            self.notify(line)

    def _lost(self, sent: Sent) -> None:
        self.lost += 1
        self._journal(event="ended", name=sent.name, status="lost")
        self.notify(f"batch {sent.name} ({sent.batch_id}) is no longer known to the provider (404); "
                    f"its {len(sent.prompts):,} requests go again")
        if self.lost >= MAX_LOST:
            self.error = BatchUnavailable(f"the provider lost {self.lost} batches (404 when polled); resume the run "
                                          "later")
        self._ended(sent, {})

    def _ended(self, sent: Sent, results: dict[str, LineResult]) -> None:
        for key in sent.prompts:
            if self.running.get(key) is sent:
                del self.running[key]
        self.results.update(results)
        sent.ended.set()
        if self.held:  # its worst case is spent or freed: what waited on the budgets may fit now
            self.pending += self.held
            self.held = []
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.ensure_future(self._flush())

    @staticmethod
    def _fail(waiting: list[tuple[Call, asyncio.Future]], error: BaseException) -> None:
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)

    # -- sessions -------------------------------------------------------------------------------

    async def start(self, answered: Callable[[str], bool] = lambda key: False) -> None:
        """Take up what an earlier session left: batches in flight are followed, a submit cut off is found
        again, and ended batches' answers not yet ``answered`` (journaled) are kept for their requests."""
        for api in {id(api): api for api in self.apis.values()}.values():
            await api.check()  # no Batch API: said now, before a batch is paid for
        states = batch_states(self.journal, repair=True)
        self._names = len(states)
        for name, state in states.items():
            if state.get("status") in ("refused", "lost"):
                continue
            group = state.get("group", "run")
            api = self.apis.get(group)
            prompts = {key: prompt for key, prompt in self._read_input(name).items() if not answered(key)}
            if not prompts or api is None:
                continue
            if "status" in state:  # ended: its answers are in its kept files
                for kind in ("output", "errors"):
                    path = self.files / f"{name}.{kind}.jsonl"
                    if path.is_file():
                        self.results.update(read_results(path.read_bytes(), api.api, prompts))
                continue
            if state.get("file_id") and state.get("endpoint", redact_url(api.base_url)) != redact_url(api.base_url):
                raise BatchesElsewhere(
                    f"{self.folder} has batch {name} at {state['endpoint']}, not at {redact_url(api.base_url)}: "
                    f"give --base-url {state['endpoint']} again to collect its answers, or cancel it there first "
                    f"(--cancel-batches with that --base-url); a batch is never paid for twice")
            batch_id = state.get("batch_id")
            if batch_id is None and state.get("file_id"):
                batch = await api.find(state["file_id"])
                if batch is None:
                    continue
                batch_id = batch.id
                self._journal(event="submitted", name=name, batch_id=batch_id)
            if batch_id is not None:
                self.notify(f"batch {name}: still at the provider ({batch_id}), following it")
                self._running(Sent(name, group, prompts, batch_id))

    def _read_input(self, name: str) -> dict[str, str]:
        """The requests of a batch's kept input file: key -> prompt."""
        path = self.files / f"{name}.input.jsonl"
        prompts = {}
        if not path.is_file():
            return prompts
        for raw in path.read_bytes().splitlines():
            try:
                line = json.loads(raw)
                body = line["body"]
                prompt = body["prompt"] if "prompt" in body else body["messages"][0]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                continue
            prompts[line["custom_id"]] = prompt
        return prompts

    async def cancel_all(self) -> int:
        """Cancel every batch in flight and keep what they answered; returns how many were cancelled."""
        following = {id(sent): sent for sent in self.running.values()}
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(self._follow(sent, cancel=True) for sent in following.values()))
        if self.error is not None:
            raise self.error
        return sum(1 for sent in following.values() if sent.status == "cancelled")

    def in_flight(self) -> int:
        return len({id(sent) for sent in self.running.values()})

    async def close(self) -> None:
        """Stop following (the batches go on at the provider) and close the connections."""
        for task in [self._flusher, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [self._flusher, *self._tasks] if t is not None], return_exceptions=True)
        for api in {id(api): api for api in self.apis.values()}.values():
            await api.close()
        self.journal.close()

    def _new_name(self) -> str:
        self._names += 1
        return f"{self._names:05d}"

    def _journal(self, **record) -> None:
        self.journal.append(record)
        self.journal.sync()


def batches_said(n: int) -> str:
    """'1 batch', '2 batches'."""
    return f"{n} batch" + ("" if n == 1 else "es")


def _size(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB else f"{size / 1000:.0f} KB"


def batch_states(journal: Journal, repair: bool = False) -> dict[str, dict]:
    """Each batch's state, by name: its journal records merged in order (``status`` once it ended)."""
    states: dict[str, dict] = {}
    for record in journal.read(repair=repair, required=("event", "name")):
        states.setdefault(record["name"], {}).update(record)
    return states


def batches_in_flight(folder: Path) -> int:
    """Batches that a journal in ``folder`` shows uploaded or submitted and not ended."""
    states = batch_states(Journal(Path(folder) / "batches.jsonl"))
    return sum(1 for state in states.values() if "file_id" in state and "status" not in state)
