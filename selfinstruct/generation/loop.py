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
RunStopped says why. Budgets stop it the same way; --max-requests counts every HTTP
request (attempt), retries included, before it is sent. A request waiting to retry when
the run stops is abandoned: journaled with its attempts, and sent again on resume.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Callable

from selfinstruct.config import Config
from selfinstruct.endpoint import structured
from selfinstruct.endpoint.client import ModelClient
from selfinstruct.endpoint.ledger import Call, Ledger, Limits, RunStopped, gather
from selfinstruct.endpoint.progress import ProgressView
from selfinstruct.endpoint.stats import Stats
from selfinstruct.generation import judge
from selfinstruct.generation.candidate import Candidate, Request
from selfinstruct.generation.methods.base import Context
from selfinstruct.generation.methods.registry import METHODS
from selfinstruct.generation.prompts import PromptSet
from selfinstruct.store.rundir import RunDir
from selfinstruct.formats.task import Instance, Task
from selfinstruct.text.rouge import RougeIndex
from selfinstruct.text.rules import clean_instances, instruction_rejection

SIMILAR_SHOWN = 5


class Run:
    """State of one run (pool, index, counters), rebuilt from the run directory."""

    def __init__(self, config: Config, prompts: PromptSet, seeds: list[Task], rundir: RunDir | None = None,
                 client: ModelClient | None = None, stats: Stats | None = None, view: ProgressView | None = None,
                 judge_client: ModelClient | None = None):
        """Without a run directory and client, a Run only builds requests (for a dry run). ``judge_client``:
        where judge requests go, if not to ``client``."""
        self.config, self.prompts, self.seeds, self.rundir = config, prompts, seeds, rundir
        self.stats, self.view = stats, view
        self.continued = config.api == "completion"
        self.structured = bool(config.structured)  # answers are JSON (structured.py), read by Run.structured_answer
        self.round = 0
        self.index = RougeIndex((task.instruction for task in seeds), config.normalize)
        self.machine: list[str] = []
        self.pool_after: list[int] = []  # machine tasks in the pool after each round
        self.method = METHODS[config.mode](Context(
            config, prompts, seeds, self.machine, self.pool_after, ask=self.ask, reject=self.reject,
            screening=self.screening, structured_answer=self.structured_answer,
            usable_instances=self.usable_instances, count_generated=self._count_generated, gather=gather))
        # Which waiting request gets a free slot first (lower first): the method's order, then the judge.
        self.priority = {**self.method.stages, judge.STAGE: max(self.method.stages.values()) + 1}
        if rundir is None:
            return
        hint = ", or leave --structured off if it does not take response_format" if self.structured else ""
        limits = Limits(config.max_requests, config.max_total_tokens, config.max_cost, config.failure_window,
                        config.max_failure_share, refusal_hint=hint)
        self.ledger = Ledger(rundir.responses, stats, client, judge_client, config.concurrency, limits,
                             on_record=lambda record: view.refresh())
        self.ledger.replay(rundir.read_responses(self.priority))

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Rounds until the target. Round r's first requests sample the pool as it stood after round
        r - 2, so they can be sent while round r - 1 completes its candidates."""
        idle, ahead, last_yield, ledger = 0, None, self.config.requests_per_round, self.ledger
        try:
            while self.stats.accepted < self.stats.target:
                accepted, sent = self.stats.accepted, ledger.sent
                requests, answers = ahead or self._ask_round(self.round)
                ahead = None
                if ledger.succeeded and 0 < last_yield < self.stats.target - accepted:
                    ahead = self._ask_round(self.round + 1)  # a working endpoint, and more rounds to go: ask now
                candidates = await self.method.candidates(requests, await answers)
                candidates = await self.method.complete(candidates, self.stats.target - accepted)
                if self.config.judge:
                    await gather(*(self._judge(c) for c in candidates if c.instances))
                self._accept_in_order(candidates)
                self.pool_after.append(len(self.machine))
                self.rundir.sync()
                self.round += 1
                last_yield = self.stats.accepted - accepted
                if ledger.sent > sent:  # rounds replayed whole from the journal do not count
                    idle = 0 if last_yield else idle + 1
                if ledger.stop_reason:
                    raise RunStopped(ledger.stop_reason)
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
        requests = [self.method.request(rng, round_, i) for i in range(self.config.requests_per_round)]
        return requests, asyncio.ensure_future(gather(*(self.ask(r) for r in requests)))

    # -- what methods share --------------------------------------------------------------------

    def screening(self) -> Callable[..., Candidate | None]:
        """``screen(request, j, text, exclude=())`` for one round: the j-th instruction of an answer
        becomes a Candidate if it passes the heuristic rules and is not too similar to the pool or to
        an earlier candidate of the round (texts in ``exclude`` aside: an evolved instruction's
        ancestors); otherwise its rejection is written and it is None."""
        round_index = RougeIndex(normalize=self.config.normalize)
        return lambda request, j, text, exclude=(): self._screen_instruction(request, j, text, round_index, exclude)

    def _screen_instruction(self, request: Request, j: int, text: str, round_index: RougeIndex,
                            exclude: tuple[str, ...]) -> Candidate | None:
        config = self.config
        cid = f"r{request.round:04d}-{request.slot.rsplit('.', 1)[1]}-{j:02d}"
        self.stats.candidates["generated"] += 1
        reason = instruction_rejection(text, config.lang, config.min_length, config.max_length)
        if reason:
            self.reject(cid, request, reason, text)
            return None
        shown = SIMILAR_SHOWN + len(exclude)
        matches = [(m.score, m.text) for index in (self.index, round_index) for m in index.most_similar(text, shown)
                   if m.text not in exclude]
        matches.sort(key=lambda m: -m[0])
        most_similar = [{"instruction": t, "score": round(s, 4)} for s, t in matches[:SIMILAR_SHOWN]]
        if matches and matches[0][0] > config.threshold:
            self.reject(cid, request, "too_similar", text, most_similar=most_similar)
            return None
        round_index.add(text)
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

    def _accept_in_order(self, candidates: list[Candidate]) -> None:
        for candidate in candidates:
            for args, kwargs in candidate.rejections:
                self.reject(*args, **kwargs)
            if not candidate.instances or self.stats.accepted >= self.stats.target:
                continue
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
        self.view.refresh()

    def _count_generated(self) -> None:
        self.stats.candidates["generated"] += 1

    def _join_pool(self, record: dict) -> None:
        self.index.add(record["instruction"])
        self.machine.append(record["instruction"])
        self.stats.accepted += 1
        self.method.joined(record)

    def reject(self, rid: str, request: Request, reason: str, instruction: str, *, detail: str | None = None,
                most_similar: list[dict] | None = None, lineage: dict | None = None) -> None:
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
                    response_format, self.priority[request.stage], request.judge)
        return await self.ledger.ask(call)


def request_key(request: Request, config: Config, response_format: dict | None = None) -> str:
    model = config.judge_model if request.judge else config.model
    payload = {"slot": request.slot, "prompt": request.prompt, "model": model, "api": config.api,
               "max_tokens": request.max_tokens, "temperature": request.temperature, "top_p": config.top_p,
               "stop": request.stop}
    if response_format:  # only then, so that the keys of free-text runs stay what they were
        payload["response_format"] = response_format
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]
