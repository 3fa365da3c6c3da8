"""The bootstrapping loop: rounds that overlap, decided in a fixed order.

A round is ``requests_per_round`` first requests, sampled with a random generator seeded by
(seed, round). Nothing waits for a round to end: a request is sent whenever a slot is free, and
each candidate's later requests go out as soon as it is screened, ahead of first requests (so
started candidates finish first). What makes the result independent of which answer comes back
first is the order in which things are decided, the same in every run:

- screening goes request by request, in slot order; an instruction is compared with the pool as it
  stood ``lag`` rounds back (the method's), every instruction screened in the rounds since (even one
  that later fails), and the ones before it in its round: sets that do not depend on answer timing;
- candidates are committed (accepted, or their rejections written) in that same order, like a
  reorder buffer, until the target: tasks.jsonl and rejected.jsonl are a pure function of the seed
  and the journaled answers;
- a round's prompts draw on the pool as committed ``lag`` rounds before it, so its requests wait
  only while that round is still deciding; Alpaca draws only seeds and never waits.

Every answer is journaled under its slot, so a resumed run replays from the first round, taking
answers from the journal and sending only what was never answered.

Stop rules end a run that cannot progress (rounds that accept nothing, requests that keep
failing): requests in flight finish and are journaled, nothing new is sent, and RunStopped says
why. Budgets stop it the same way; --max-requests counts every HTTP request (attempt), retries
included, before it is sent. Near the target, a candidate's later requests wait while the
candidates before it could still fill the target, and no round starts that is not needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable

from selfinstruct.config import Config
from selfinstruct.endpoint import structured
from selfinstruct.endpoint.batcher import Batcher
from selfinstruct.endpoint.client import ModelClient
from selfinstruct.endpoint.ledger import Call, Ledger, Limits, RunStopped
from selfinstruct.endpoint.progress import ProgressView
from selfinstruct.endpoint.stats import Stats
from selfinstruct.generation import judge
from selfinstruct.generation.candidate import Candidate, Request
from selfinstruct.generation.methods.base import Context
from selfinstruct.generation.methods.registry import METHODS
from selfinstruct.generation.order import CommitOrder, RoundState, Slot
from selfinstruct.generation.prompts import PromptSet
from selfinstruct.store.rundir import RunDir
from selfinstruct.formats.task import Instance, Task
from selfinstruct.text.rouge import RougeIndex
from selfinstruct.text.rules import clean_instances, instruction_rejection

SIMILAR_SHOWN = 5
AHEAD = 32  # rounds started beyond the first one not yet committed: work for the slots while it finishes
# With --batch nothing waits for a slot: rounds start while they may be needed, so that a batch holds them all.
AHEAD_BATCH = 1 << 30


class Run:
    """State of one run (pool, index, counters), rebuilt from the run directory."""

    def __init__(self, config: Config, prompts: PromptSet, seeds: list[Task], rundir: RunDir | None = None,
                 client: ModelClient | None = None, stats: Stats | None = None, view: ProgressView | None = None,
                 judge_client: ModelClient | None = None, batcher: Batcher | None = None):
        """Without a run directory and client, a Run only builds requests (for a dry run). ``judge_client``:
        where judge requests go, if not to ``client``; ``batcher``: --batch, where every request goes."""
        self.config, self.prompts, self.seeds, self.rundir = config, prompts, seeds, rundir
        self.stats, self.view = stats, view
        self.continued = config.api == "completion"
        self.structured = bool(config.structured)  # answers are JSON (structured.py), read by Run.structured_answer
        self.index = RougeIndex((task.instruction for task in seeds), config.normalize)
        self.indexed = 0  # machine tasks in the index: the pool as committed the method's lag rounds back
        self.machine: list[str] = []
        self.pool_after: list[int] = []  # machine tasks in the pool after each round
        self.method = METHODS[config.mode](Context(
            config, prompts, seeds, self.machine, self.pool_after, ask=self.ask, reject=self.reject,
            structured_answer=self.structured_answer, usable_instances=self.usable_instances,
            count_generated=self._count_generated, lag=METHODS[config.mode].lag))
        self.lag = self.method.lag
        # Which waiting request gets a free slot first (lower first): the method's order, then the judge.
        self.priority = {**self.method.stages, judge.STAGE: max(self.method.stages.values()) + 1}
        self.order = CommitOrder()
        self.batched = batcher is not None
        self.ahead = AHEAD_BATCH if self.batched else AHEAD
        self.finished: Counter[bool] = Counter()  # candidates whose later requests ended: with instances or not
        self.idle = 0  # rounds in a row, sent in this session, that accepted nothing
        self.progressed = False  # an answer gave a candidate: the endpoint answers usably
        self.sent_in_round: set[int] = set()  # rounds with a request sent in this session
        self._entries: list | None = None  # the slot whose answer is being screened: its rejections wait there
        self._tasks: set[asyncio.Task] = set()
        self._event = asyncio.Event()
        self._halt: RunStopped | None = None
        if rundir is None:
            return
        hint = ", or leave --structured off if it does not take response_format" if self.structured else ""
        limits = Limits(config.max_requests, config.max_total_tokens, config.max_cost, config.failure_window,
                        config.max_failure_share, refusal_hint=hint)
        self.ledger = Ledger(rundir.responses, stats, client, judge_client, config.concurrency, limits,
                             on_record=lambda record: view.refresh(), batcher=batcher)
        self.ledger.replay(rundir.read_responses(self.priority))

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Rounds, overlapping, until the target (see the module's docstring)."""
        try:
            while self.stats.accepted < self.stats.target:
                self._start_rounds()
                if self.ledger.stop_reason and self._halt is None:
                    raise RunStopped(self.ledger.stop_reason)
                if not self._tasks:
                    raise RuntimeError("the loop has nothing left to wait for")  # a bug: say so, never hang
                changed = self._event
                waiting = asyncio.ensure_future(changed.wait())
                done, _ = await asyncio.wait(self._tasks | {waiting}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                self._tasks -= done
                failures = [task.exception() for task in done - {waiting} if not task.cancelled() and task.exception()]
                for failure in sorted(failures, key=lambda failure: isinstance(failure, RunStopped)):
                    raise failure  # the cause (a refusal, say) before the stops it caused
                if self.ledger.stop_reason and self._halt is None:
                    raise RunStopped(self.ledger.stop_reason)
                if self._halt is not None:
                    raise self._halt
            # The target is reached: nothing new is sent, and what is in flight is journaled, so that a resume
            # (or a replay) finds every answer a candidate it started needs.
            self._stop_all(RunStopped("the target is reached"))
            await asyncio.gather(*self._tasks, return_exceptions=True)
        except RunStopped as stop:
            self._stop_all(stop)
            await asyncio.gather(*self._tasks, return_exceptions=True)  # in flight: finish, journaled
            self.rundir.sync()
            raise
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for journal in (self.rundir.tasks, self.rundir.rejected):
            journal.finish()

    def _start_rounds(self) -> None:
        """Start rounds while they may still be needed, at most AHEAD beyond the first not committed."""
        order = self.order
        while (self._halt is None and not self.ledger.stop_reason and order.next_round - order.committing < self.ahead
               # one round at a time until an answer gives a candidate, and again while rounds accept nothing
               and (self.progressed and not self.idle or order.next_round == order.committing)
               # a round whose prompts draw on the pool starts once the round ``lag`` before it is committed
               and (not self.method.draws_from_pool or order.next_round - self.lag < order.committing)
               and self._expected() < self.stats.target):
            self._spawn(self._round(order.start()))

    def _expected(self) -> float:
        """Tasks the rounds started so far may still give: accepted, screened candidates not failed, and the
        slots not yet screened at the yield per slot so far (one, before any). With --batch, candidates count
        at the share that finished with instances so far: a batch more is a wait of hours."""
        order = self.order
        per_slot = order.screened_candidates / order.screened_slots if order.screened_slots else 1.0
        unscreened = order.unscreened_slots(self.config.requests_per_round)
        share = self._finishing() if self.batched else 1.0
        return self.stats.accepted + (order.alive() + unscreened * per_slot) * share

    def _finishing(self) -> float:
        """The share of finished candidates that got instances (one before any finished; at least a tenth)."""
        finished = self.finished.total()
        return max(0.1, self.finished[True] / finished) if finished else 1.0

    async def _round(self, state: RoundState) -> None:
        """Send a round's first requests, screen their answers in slot order, and finish its candidates."""
        number, rounds = state.number, self.order.rounds
        rng = random.Random(f"{self.config.seed}:{number}")
        state.slots = [Slot(self.method.request(rng, number, i)) for i in range(self.config.requests_per_round)]
        answers = [asyncio.ensure_future(self.ask(slot.request)) for slot in state.slots]
        try:
            await self._until(lambda: (number == 0 or rounds[number - 1].screened)
                              and (number < self.lag or rounds[number - self.lag].committed))
            self._index_through(number - self.lag)
            screen = self._screening(state)
            for slot, answer in zip(state.slots, answers):
                self._screen_slot(state, slot, await answer, screen)
            state.screened = True
            self._changed()
        except RunStopped:
            await asyncio.gather(*answers, return_exceptions=True)  # in flight: finish, journaled
            raise
        finally:
            for answer in answers:
                answer.cancel()
            await asyncio.gather(*answers, return_exceptions=True)

    def _screen_slot(self, state: RoundState, slot: Slot, answer: dict, screen) -> None:
        """One answer's candidates, screened; its rejections wait in the slot to be written in order."""
        self._entries = slot.entries
        try:
            candidates = self.method.answer_candidates(slot.request, answer, screen) if not answer["error"] else []
        finally:
            self._entries = None
        self.order.screened(state, slot, candidates)
        self.progressed = self.progressed or bool(candidates)
        for candidate in candidates:
            if self.method.finish is None and not self.config.judge:
                candidate.done = True
            else:
                self._spawn(self._finish(candidate))
        self._commit()

    async def _finish(self, candidate: Candidate) -> None:
        """A candidate's later requests; near the target they wait while those before it could fill it."""
        target, order = self.stats.target, self.order
        if not self.batched:
            await self._until(lambda: self.stats.accepted + len(order.pending) < target
                              or self.stats.accepted + order.alive(candidate.seq) < target)
        else:  # with --batch a wait costs a batch: go on with as many as should fill the target at once
            await self._until(lambda: self.stats.accepted + order.alive(candidate.seq) * self._finishing() < target)
        if self.method.finish is not None:
            await self.method.finish(candidate)
        if self.config.judge and candidate.instances:
            await self._judge(candidate)
        candidate.done = True
        self.finished[bool(candidate.instances)] += 1
        self._commit()

    def _commit(self) -> None:
        """Commit what is decided, in order, until the target."""
        self.order.commit(self._accept, self._write_rejection, self._round_committed,
                          lambda: self.stats.accepted >= self.stats.target)
        self._changed()
        self.view.refresh()

    def _round_committed(self, state: RoundState) -> None:
        self.pool_after.append(len(self.machine))
        self.rundir.sync()
        if state.number in self.sent_in_round:  # rounds replayed whole from the journal do not count
            self.sent_in_round.discard(state.number)
            self.idle = 0 if state.accepted else self.idle + 1
        if (self.config.max_idle_rounds and self.idle >= self.config.max_idle_rounds and self._halt is None
                and not self.ledger.stop_reason):  # the ledger's reason, when it has one, says more
            self._halt = RunStopped(f"{self.idle} rounds in a row accepted nothing (max-idle-rounds); the answers "
                                    "only repeat the pool or are unusable, see rejected.jsonl")
        self.order.forget(state.number - self.lag)  # no round waits on it, nor screens against it, any more

    def _index_through(self, number: int) -> None:
        """The similarity index holds the pool as committed up to round ``number``, not a task more: so what a
        round is screened against does not depend on how far later rounds have got."""
        if number >= 0:
            for instruction in self.machine[self.indexed:self.pool_after[number]]:
                self.index.add(instruction)
            self.indexed = max(self.indexed, self.pool_after[number])

    # -- waiting, without polling -----------------------------------------------------------

    def _changed(self) -> None:
        """Something was decided: wake whatever waits on the loop's state."""
        self._event.set()
        self._event = asyncio.Event()

    async def _until(self, ready: Callable[[], bool]) -> None:
        """Wait until ``ready()``; a stop ends the wait with the stop."""
        while not ready():
            if self._halt is not None:
                raise RunStopped(str(self._halt))
            await self._event.wait()

    def _stop_all(self, stop: RunStopped) -> None:
        """Nothing new starts; whatever waits on the loop's state ends with the stop."""
        self._halt = self._halt or stop
        self.ledger.stop_reason = self.ledger.stop_reason or str(self._halt)  # no new request, no more retries
        self._changed()

    def _spawn(self, coroutine) -> None:
        self._tasks.add(asyncio.ensure_future(coroutine))

    # -- what methods share --------------------------------------------------------------------

    def _screening(self, state: RoundState) -> Callable[..., Candidate | None]:
        """``screen(request, j, text, exclude=())`` for one round: the j-th instruction of an answer becomes
        a Candidate if it passes the heuristic rules and is not too similar to the pool as committed ``lag``
        rounds back, to an instruction screened in the rounds since, or to an earlier one of this round
        (texts in ``exclude`` aside: an evolved instruction's ancestors); otherwise it is rejected, None."""
        state.index = RougeIndex(normalize=self.config.normalize)
        since = [self.order.rounds[q].index for q in range(max(0, state.number - self.lag + 1), state.number)]
        indexes = [self.index, *since, state.index]
        return lambda request, j, text, exclude=(): self._screen_instruction(request, j, text, indexes, exclude)

    def _screen_instruction(self, request: Request, j: int, text: str, indexes: list[RougeIndex],
                            exclude: tuple[str, ...]) -> Candidate | None:
        config = self.config
        cid = f"r{request.round:04d}-{request.slot.rsplit('.', 1)[1]}-{j:02d}"
        self.stats.candidates["generated"] += 1
        reason = instruction_rejection(text, config.lang, config.min_length, config.max_length)
        if reason:
            self.reject(cid, request, reason, text)
            return None
        shown = SIMILAR_SHOWN + len(exclude)
        matches = [(m.score, m.text) for index in indexes for m in index.most_similar(text, shown)
                   if m.text not in exclude]
        matches.sort(key=lambda m: -m[0])
        most_similar = [{"instruction": t, "score": round(s, 4)} for s, t in matches[:SIMILAR_SHOWN]]
        if matches and matches[0][0] > config.threshold:
            self.reject(cid, request, "too_similar", text, most_similar=most_similar)
            return None
        indexes[-1].add(text)
        self.stats.candidates["screened"] += 1
        return Candidate(cid, text, {"round": request.round, "request": request.slot, "item": j}, most_similar)

    def structured_answer(self, request: Request, answer: dict, rid: str, instruction: str,
                          reject=None) -> structured.Reading:
        """A structured answer read against its request's shape. One that does not fit is rejected here
        with its reason (invalid_json, schema_mismatch, cut_off) and where it fails, and has no value;
        ``instruction`` is what the rejection shows (the candidate's, or the answer itself)."""
        reading = structured.read(request.shape, answer["text"], answer["finish_reason"])
        if reading.value is None:
            (reject or self.reject)(rid, request, reading.reason, instruction, detail=reading.detail)
        return reading

    def response_format(self, request: Request) -> dict | None:
        """What a request sends as response_format with --structured; None for a free-text answer."""
        if not self.structured or request.shape is None:
            return None
        return structured.response_format(request.shape, self.config.structured,
                                          self.config.serves_llama_cpp_python(judge=request.judge))

    def usable_instances(self, candidate: Candidate, request: Request, instances: list[Instance],
                          reject=None) -> list[Instance]:
        kept, dropped = clean_instances(instances)
        if not kept:
            reasons = sorted({reason for _, reason in dropped})
            (reject or self.reject)(candidate.id, request, "no_valid_instances", candidate.instruction,
                                     detail=", ".join(reasons))
        return kept[: self.config.instances_per_task]

    async def _judge(self, candidate: Candidate) -> None:
        """The judge's score of a complete candidate; below --min-score (or none given) it is rejected."""
        request = self.judge_request(candidate)
        answer = await self.ask(request)
        reason = None
        if answer["error"]:
            reason, detail = f"request_failed:{answer['error']}", None
        else:
            if self.structured:
                reading = structured.read(request.shape, answer["text"], answer["finish_reason"])
                score, detail = ((reading.value["score"], reading.value["reason"].strip()[:judge.REASON_CHARS])
                                 if reading.value else (None, answer["text"][:judge.REASON_CHARS]))
                unscored, why = reading.reason, reading.detail
            else:
                score, detail = judge.parse_score(answer["text"])
                unscored, why = "unparseable_score", answer["text"][:200]
            candidate.judged = {"score": score, "reason": detail}
            minimum = self.config.min_score
            if minimum and score is None:
                reason, detail = unscored, why
            elif minimum and score < minimum:
                reason, detail = "low_score", f"{score}: {detail}"
        if reason:
            candidate.rejections.append(((candidate.id, request, reason, candidate.instruction), {"detail": detail}))
            candidate.instances = None

    def judge_request(self, candidate: Candidate) -> Request:
        round_ = candidate.source["round"]
        prompt = judge.judge_prompt(self.prompts, candidate.instruction, candidate.instances)
        return Request(judge.STAGE, f"r{round_}.judge.{candidate.id}", round_, prompt, judge.JUDGE_TOKENS, 0.0,
                       ["\n\n"] if self.continued else None, judge=True, shape="judge")

    def _accept(self, candidate: Candidate, state: RoundState) -> None:
        """Commit one candidate: its rejections, then the task if it has instances."""
        for args, kwargs in candidate.rejections:
            self._write_rejection(*args, **kwargs)
        if not candidate.instances:
            return
        record = {
            "id": candidate.id,
            "instruction": candidate.instruction,
            "instances": [{"input": i.input, "output": i.output} for i in candidate.instances],
            "is_classification": candidate.is_classification,
            "most_similar": candidate.most_similar,
            "source": candidate.source,
        } | ({"lineage": candidate.lineage} if candidate.lineage else {}) | (
            {"judge": candidate.judged} if candidate.judged else {})
        self.rundir.tasks.append(record)
        self._join_pool(record)
        state.accepted += 1

    def _count_generated(self) -> None:
        self.stats.candidates["generated"] += 1

    def _join_pool(self, record: dict) -> None:
        self.machine.append(record["instruction"])
        self.stats.accepted += 1
        self.method.joined(record)

    def reject(self, *args, **kwargs) -> None:
        """A rejection found while an answer is screened waits in its slot, to be written in commit order."""
        if self._entries is None:
            raise RuntimeError("a rejection outside screening must wait on its candidate")
        self._entries.append((args, kwargs))

    def _write_rejection(self, rid: str, request: Request, reason: str, instruction: str, *,
                         detail: str | None = None, most_similar: list[dict] | None = None,
                         lineage: dict | None = None) -> None:
        record = {"id": f"{rid}:{request.stage}", "round": request.round, "stage": request.stage, "reason": reason,
                  "instruction": instruction, "request": request.slot}
        for name, value in (("detail", detail), ("most_similar", most_similar), ("lineage", lineage)):
            if value:
                record[name] = value
        self.stats.count_rejection(record)
        self.rundir.rejected.append(record)

    # -- requests ---------------------------------------------------------------------------

    async def ask(self, request: Request) -> dict:
        """The journaled answer to a request (the ledger's), sending it only if it was never answered."""
        response_format = self.response_format(request)
        call = Call(request.slot, {"key": request_key(request, self.config, response_format), "slot": request.slot,
                                   "round": request.round, "stage": request.stage},
                    request.prompt, request.max_tokens, request.temperature, self.config.top_p,
                    None if response_format else request.stop,  # free-text stops could cut JSON short
                    response_format, (-self.priority[request.stage], request.round), request.judge)
        if call.key not in self.ledger.cache:
            self.sent_in_round.add(request.round)
        return await self.ledger.ask(call)


def request_key(request: Request, config: Config, response_format: dict | None = None) -> str:
    model = config.judge_model if request.judge else config.model
    payload = {"slot": request.slot, "prompt": request.prompt, "model": model, "api": config.api,
               "max_tokens": request.max_tokens, "temperature": request.temperature, "top_p": config.top_p,
               "stop": request.stop}
    if response_format:  # only then, so that the keys of free-text runs stay what they were
        payload["response_format"] = response_format
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]
