"""The bootstrapping loop, in rounds.

Each round samples its prompts with a random generator seeded by (seed, round) from
the pool as it stood when the round began, sends them concurrently, and then decides
candidates in a fixed order. A round is therefore a pure function of the pool, the
seed and the model's answers. Every answer is journaled under its slot (its place in
the run), so a resumed run replays every round from the first, taking answers from
the journal and sending only what was never answered: the pool, tasks.jsonl and
rejected.jsonl are always exactly what the journaled answers give.

Stop rules end a run that cannot progress (rounds that accept nothing, requests that
keep failing): requests in flight finish and are journaled, nothing new is sent, and
RunStopped says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from .client import Abandoned, FatalAPIError, ModelClient, RequestFailed
from .config import Config
from .filters import clean_instances, instruction_rejection
from .parsing import parse_alpaca_tasks, parse_instances, parse_instructions, parse_yes_no
from .prompts import PromptSet
from .progress import ProgressView
from .stats import Stats
from .rundir import RunDir
from .seeds import Instance, Task
from .similarity import RougeIndex
from .slots import PrioritySlots

SIMILAR_SHOWN = 5
ALPACA_EXAMPLES = 3
CLASSIFY_TOKENS = 16
# Refusals (400, 413, 422) of this many requests before any success mean the settings are wrong.
REFUSALS_BEFORE_FATAL = 3
# Which waiting request gets a free slot first: those the next round waits on, then the current round's.
PRIORITY = {"instructions": 0, "alpaca": 0, "classify": 1, "instances": 2}


class RunStopped(RuntimeError):
    """The run cannot progress: it stopped before its target and can be resumed."""


@dataclass
class Request:
    stage: str
    slot: str  # where in the run this request belongs, e.g. "r3.instances.r0003-01-04"
    round: int
    prompt: str
    max_tokens: int
    temperature: float
    stop: list[str] | None = None
    next_number: int = 0  # the list number the prompt ends with, where the answer's list goes on


@dataclass
class Candidate:
    id: str
    instruction: str
    source: dict
    most_similar: list[dict]
    is_classification: bool | None = None
    instances: list[Instance] | None = None
    rejections: list[tuple] = field(default_factory=list)  # written in candidate order, not as answers come


class Run:
    """State of one run (pool, index, counters), rebuilt from the run directory."""

    def __init__(self, config: Config, prompts: PromptSet, seeds: list[Task], rundir: RunDir | None = None,
                 client: ModelClient | None = None, stats: Stats | None = None, view: ProgressView | None = None):
        """Without a run directory and client, a Run only builds requests (for a dry run)."""
        self.config, self.prompts, self.seeds, self.rundir = config, prompts, seeds, rundir
        self.client, self.stats, self.view = client, stats, view
        self.continued = config.api == "completion"
        self.cache: dict[str, dict] = {}
        for record in rundir.read_responses() if rundir else ():
            self.cache.setdefault(record["slot"], record)
            stats.count_response(record)
        self.round = 0
        self.index = RougeIndex((task.instruction for task in seeds), config.normalize)
        self.machine: list[str] = []
        self.pool_after: list[int] = []  # machine tasks in the pool after each round
        self.slots = PrioritySlots(config.concurrency)
        self.stop_reason: str | None = None
        self.sent = 0  # requests sent in this session
        self.in_flight = 0
        self.succeeded = 0
        self.recent: deque[str | None] = deque(maxlen=config.failure_window or None)  # last errors
        self.refused: list[dict] = []  # refusals before any success, journaled only once one succeeds

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Rounds until the target. Round r's first requests sample the pool as it stood after round
        r - 2, so they can be sent while round r - 1 completes its candidates."""
        idle, ahead, last_yield = 0, None, self.config.requests_per_round
        try:
            while self.stats.accepted < self.stats.target:
                accepted, sent = self.stats.accepted, self.sent
                requests, answers = ahead or self._ask_round(self.round)
                ahead = None
                if self.succeeded and 0 < last_yield < self.stats.target - accepted:
                    ahead = self._ask_round(self.round + 1)  # a working endpoint, and more rounds to go: ask now
                candidates = await self._screen_round(requests, await answers)
                if self.config.mode == "self-instruct":
                    # Near the target, pay only for what can still be accepted (with room for rejections).
                    candidates = candidates[: 2 * (self.stats.target - accepted)]
                    await self._gather(*(self._complete_candidate(c) for c in candidates))
                self._accept_in_order(candidates)
                self.pool_after.append(len(self.machine))
                self.rundir.sync()
                self.round += 1
                last_yield = self.stats.accepted - accepted
                if self.sent > sent:  # rounds replayed whole from the journal do not count
                    idle = 0 if last_yield else idle + 1
                if self.stop_reason:
                    raise RunStopped(self.stop_reason)
                if self.config.max_idle_rounds and idle >= self.config.max_idle_rounds:
                    raise RunStopped(f"{idle} rounds in a row accepted nothing (max-idle-rounds); the answers "
                                     "only repeat the pool or are unusable, see rejected.jsonl")
        except RunStopped:
            if ahead:  # let its requests in flight finish and be journaled
                await asyncio.gather(ahead[1], return_exceptions=True)
            raise
        finally:
            if ahead:
                ahead[1].cancel()
                await asyncio.gather(ahead[1], return_exceptions=True)
        for journal in (self.rundir.tasks, self.rundir.rejected):
            journal.finish()

    def _ask_round(self, round_: int) -> tuple[list[Request], asyncio.Future]:
        """Send a round's first requests, sampled from the pool as it is now."""
        rng = random.Random(f"{self.config.seed}:{round_}")
        build = self._alpaca_request if self.config.mode == "alpaca" else self._instruction_request
        requests = [build(rng, round_, i) for i in range(self.config.requests_per_round)]
        return requests, asyncio.ensure_future(self._ask_all(requests))

    async def _screen_round(self, requests: list[Request], answers: list[dict]) -> list[Candidate]:
        if self.config.mode == "alpaca":
            return await self._screen_alpaca(requests, answers)
        return await self._screen_instructions(requests, answers)

    async def _screen_alpaca(self, requests: list[Request], answers: list[dict]) -> list[Candidate]:
        """Parse complete tasks; keep those that pass the heuristics, similarity and the instance checks."""
        candidates = []
        round_index = RougeIndex(normalize=self.config.normalize)
        for request, answer in zip(requests, answers):
            await asyncio.sleep(0)  # answers to the next round's requests are not kept waiting
            if answer["error"]:
                continue
            tasks = parse_alpaca_tasks(answer["text"], request.next_number, self.continued)
            if not tasks:
                self._reject(f"{request.slot}.0", request, "unparseable_response", answer["text"][:500])
                continue
            if answer["finish_reason"] == "length":
                cut = tasks.pop()
                self._reject(f"{request.slot}.{len(tasks)}", request, "cut_off", cut["instruction"])
            for j, task in enumerate(tasks):
                candidate = self._screen(request, j, task["instruction"], round_index)
                if candidate is None:
                    continue
                candidate.instances = self._usable_instances(
                    candidate, request, [Instance(task["input"], task["output"])])
                if candidate.instances:
                    candidates.append(candidate)
        return candidates

    # -- stages -----------------------------------------------------------------------------

    def _instruction_request(self, rng: random.Random, round_: int, i: int) -> Request:
        config = self.config
        examples = rng.sample([t.instruction for t in self.seeds], min(config.seed_examples, len(self.seeds)))
        # The pool as it stood two rounds back: fixed before this round's requests may be sent.
        known = self.pool_after[round_ - 2] if round_ >= 2 else 0
        examples += [self.machine[k] for k in rng.sample(range(known), min(config.machine_examples, known))]
        rng.shuffle(examples)
        next_number = len(examples) + 1
        prompt = self.prompts.render("instructions", examples=self.prompts.numbered(examples),
                                     next=self.prompts.task_item(next_number))
        stop = [self.prompts.task_item(next_number + 12)] + (["\n\n"] if self.continued else [])
        return Request("instructions", f"r{round_}.instructions.{i}", round_, prompt,
                       config.max_tokens, config.temperature, stop, next_number)

    def _alpaca_request(self, rng: random.Random, round_: int, i: int) -> Request:
        config = self.config
        shown = rng.sample(self.seeds, min(ALPACA_EXAMPLES, len(self.seeds)))
        examples = self.prompts.alpaca_examples(
            [(t.instruction, t.instances[0].input if t.instances else "", t.instances[0].output if t.instances else "")
             for t in shown])
        next_number = len(shown) + 1
        last = len(shown) + config.tasks_per_request
        prompt = self.prompts.render("alpaca", examples=examples, count=config.tasks_per_request,
                                     next=self.prompts.alpaca_item(next_number))
        return Request("alpaca", f"r{round_}.alpaca.{i}", round_, prompt, config.max_tokens,
                       config.temperature, [f"\n{last + 1}."], next_number)

    async def _screen_instructions(self, requests: list[Request], answers: list[dict]) -> list[Candidate]:
        """Parse each answer and keep the instructions that pass the heuristics and similarity."""
        candidates = []
        round_index = RougeIndex(normalize=self.config.normalize)
        for request, answer in zip(requests, answers):
            await asyncio.sleep(0)  # answers to the next round's requests are not kept waiting
            if answer["error"]:
                continue
            parsed = parse_instructions(answer["text"], request.next_number, self.continued,
                                        cut_off=answer["finish_reason"] == "length")
            if parsed.cut_off:
                self._reject(f"{request.slot}.{len(parsed.items)}", request, "cut_off", parsed.cut_off)
            if not parsed.items and not parsed.cut_off:
                self._reject(f"{request.slot}.0", request, "unparseable_response", answer["text"][:500])
            for j, text in enumerate(parsed.items):
                candidate = self._screen(request, j, text, round_index)
                if candidate is not None:
                    candidates.append(candidate)
        return candidates

    def _screen(self, request: Request, j: int, text: str, round_index: RougeIndex) -> Candidate | None:
        config = self.config
        cid = f"r{request.round:04d}-{request.slot.rsplit('.', 1)[1]}-{j:02d}"
        self.stats.candidates["generated"] += 1
        reason = instruction_rejection(text, config.lang, config.min_length, config.max_length)
        if reason:
            self._reject(cid, request, reason, text)
            return None
        matches = [(m.score, m.text) for m in self.index.most_similar(text, SIMILAR_SHOWN)]
        matches += [(m.score, m.text) for m in round_index.most_similar(text, SIMILAR_SHOWN)]
        matches.sort(key=lambda m: -m[0])
        most_similar = [{"instruction": t, "score": round(s, 4)} for s, t in matches[:SIMILAR_SHOWN]]
        if matches and matches[0][0] > config.threshold:
            self._reject(cid, request, "too_similar", text, most_similar=most_similar)
            return None
        round_index.add(text)
        self.stats.candidates["screened"] += 1
        return Candidate(cid, text, {"round": request.round, "request": request.slot, "item": j}, most_similar)

    def _classify_request(self, candidate: Candidate) -> Request:
        round_ = candidate.source["round"]
        return Request("classify", f"r{round_}.classify.{candidate.id}", round_,
                       self.prompts.render("classify", instruction=candidate.instruction),
                       CLASSIFY_TOKENS, 0.0, ["\n"] if self.continued else None)

    def _instances_request(self, candidate: Candidate, classification: bool) -> Request:
        """Output-first (label, then input) for classification tasks, input-first otherwise."""
        round_ = candidate.source["round"]
        stage = "instances_classification" if classification else "instances"
        return Request("instances", f"r{round_}.instances.{candidate.id}", round_,
                       self.prompts.render(stage, instruction=candidate.instruction),
                       self.config.max_tokens, self.config.temperature, ["\nTask:", "\n任务："])

    def first_requests(self) -> dict[str, Request]:
        """The first request of each prompt as it would be sent (later stages with a seed instruction)."""
        rng = random.Random(f"{self.config.seed}:0")
        if self.config.mode == "alpaca":
            return {"alpaca": self._alpaca_request(rng, 0, 0)}
        example = Candidate("r0000-0-00", self.seeds[0].instruction, {"round": 0}, [])
        return {"instructions": self._instruction_request(rng, 0, 0), "classify": self._classify_request(example),
                "instances": self._instances_request(example, False),
                "instances_classification": self._instances_request(example, True)}

    async def _complete_candidate(self, candidate: Candidate) -> None:
        """Classification identification, then instance generation (output-first for classification).
        Rejections wait on the candidate, so that rejected.jsonl does not depend on answer timing."""
        def reject(*args, **kwargs):
            candidate.rejections.append((args, kwargs))

        request = self._classify_request(candidate)
        answer = await self.ask(request)
        if answer["error"]:
            reject(candidate.id, request, f"request_failed:{answer['error']}", candidate.instruction)
            return
        candidate.is_classification = parse_yes_no(answer["text"])
        if candidate.is_classification is None:
            reject(candidate.id, request, "unparseable_classification", candidate.instruction,
                   detail=answer["text"][:200])
            return
        request = self._instances_request(candidate, candidate.is_classification)
        answer = await self.ask(request)
        if answer["error"]:
            reject(candidate.id, request, f"request_failed:{answer['error']}", candidate.instruction)
            return
        instances = parse_instances(answer["text"], candidate.is_classification, self.continued)
        if answer["finish_reason"] == "length" and instances:
            instances.pop()
        if not instances:
            reject(candidate.id, request, "unparseable_instances", candidate.instruction,
                   detail=answer["text"][:500])
            return
        candidate.instances = self._usable_instances(candidate, request, instances, reject)

    def _usable_instances(self, candidate: Candidate, request: Request, instances: list[Instance],
                          reject=None) -> list[Instance]:
        kept, dropped = clean_instances(instances)
        if not kept:
            reasons = sorted({reason for _, reason in dropped})
            (reject or self._reject)(candidate.id, request, "no_valid_instances", candidate.instruction,
                                     detail=", ".join(reasons))
        return kept[: self.config.instances_per_task]

    def _accept_in_order(self, candidates: list[Candidate]) -> None:
        for candidate in candidates:
            for args, kwargs in candidate.rejections:
                self._reject(*args, **kwargs)
            if not candidate.instances or self.stats.accepted >= self.stats.target:
                continue
            record = {
                "id": candidate.id,
                "instruction": candidate.instruction,
                "instances": [{"input": i.input, "output": i.output} for i in candidate.instances],
                "is_classification": candidate.is_classification,
                "most_similar": candidate.most_similar,
                "source": candidate.source,
            }
            self.rundir.tasks.append(record)
            self._join_pool(record)
        self.view.refresh()

    def _join_pool(self, record: dict) -> None:
        self.index.add(record["instruction"])
        self.machine.append(record["instruction"])
        self.stats.accepted += 1

    def _reject(self, rid: str, request: Request, reason: str, instruction: str, *, detail: str | None = None,
                most_similar: list[dict] | None = None) -> None:
        record = {"id": f"{rid}:{request.stage}", "round": request.round, "stage": request.stage, "reason": reason,
                  "instruction": instruction, "request": request.slot}
        if detail:
            record["detail"] = detail
        if most_similar:
            record["most_similar"] = most_similar
        self.stats.count_rejection(record)
        self.rundir.rejected.append(record)

    # -- requests ---------------------------------------------------------------------------

    async def ask(self, request: Request) -> dict:
        """The journaled answer to a request, sending it only if it was never answered."""
        cached = self.cache.get(request.slot)
        if cached is not None:
            return cached
        async with self.slots.slot(PRIORITY[request.stage]):
            self.stop_reason = self.stop_reason or self._budget_spent()
            if self.stop_reason:
                raise RunStopped(self.stop_reason)
            self.sent += 1
            self.in_flight += 1
            record = {"key": request_key(request, self.config), "slot": request.slot, "round": request.round,
                      "stage": request.stage}
            sent_at = time.monotonic()
            try:
                completion = await self.client.complete(request.prompt, max_tokens=request.max_tokens,
                                                        temperature=request.temperature, top_p=self.config.top_p,
                                                        stop=request.stop, give_up=lambda: bool(self.stop_reason))
                record.update(text=completion.text, finish_reason=completion.finish_reason, error=None)
                retries, usage = completion.retries, completion.usage
            except RequestFailed as exc:
                record.update(text="", finish_reason=None, error=exc.reason, detail=exc.detail)
                retries, usage = exc.retries, exc.usage
                if exc.refused and not self.succeeded:
                    self._hold_refusal(record, exc)
                    return record
            except Abandoned:  # not journaled: a resume sends it again
                raise RunStopped(self.stop_reason) from None
            finally:
                self.in_flight -= 1
        record.update(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                      seconds=round(time.monotonic() - sent_at, 3))
        if usage.estimated:
            record["tokens_estimated"] = True
        if retries:
            record["retries"] = dict(Counter(retries))
        if record["error"] is None:
            self.succeeded += 1
            for held in self.refused:
                self._journal(held)
            self.refused.clear()
        self._journal(record)
        self._check_failures(record)
        return record

    def _journal(self, record: dict) -> None:
        self.rundir.responses.append(record)
        self.cache[record["slot"]] = record
        self.stats.count_response(record, live=True)
        self.view.refresh()

    def _budget_spent(self) -> str | None:
        """The budget this run has used up, if any: then no new request is sent."""
        config, stats = self.config, self.stats
        requests = sum(stats.requests.values()) + self.in_flight + len(self.refused)
        if config.max_requests is not None and requests >= config.max_requests:
            return f"budget reached: max-requests {config.max_requests} ({requests} sent)"
        if config.max_total_tokens is not None and stats.total_tokens >= config.max_total_tokens:
            return f"budget reached: max-total-tokens {config.max_total_tokens} ({stats.total_tokens} used)"
        if config.max_cost is not None and stats.cost >= config.max_cost:
            return f"budget reached: max-cost ${config.max_cost:g} (${stats.cost:.4f} spent)"
        return None

    def _hold_refusal(self, record: dict, exc: RequestFailed) -> None:
        """A refused request before any success: a wrong setting stops the run rather than fail every request."""
        self.refused.append(record)
        if len(self.refused) >= REFUSALS_BEFORE_FATAL:
            raise FatalAPIError(f"the endpoint refused the first {len(self.refused)} requests "
                                f"({exc.reason}: {exc.detail}); check --model, --max-tokens and --api")

    def _check_failures(self, record: dict) -> None:
        """The failure stop rule: almost every recent request failed."""
        window = self.config.failure_window
        if not window:
            return
        self.recent.append(record["error"])
        failures = [error for error in self.recent if error]
        if len(self.recent) == window and len(failures) >= self.config.max_failure_share * window:
            common = ", ".join(f"{reason} {n}" for reason, n in Counter(failures).most_common(3))
            self.stop_reason = (f"{len(failures)} of the last {window} requests failed ({common}; "
                                "failure-window, max-failure-share)")

    async def _ask_all(self, requests: list[Request]) -> list[dict]:
        return await self._gather(*(self.ask(r) for r in requests))

    @staticmethod
    async def _gather(*coroutines):
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


def request_key(request: Request, config: Config) -> str:
    payload = {"slot": request.slot, "prompt": request.prompt, "model": config.model, "api": config.api,
               "max_tokens": request.max_tokens, "temperature": request.temperature, "top_p": config.top_p,
               "stop": request.stop}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]
