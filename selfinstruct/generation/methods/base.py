"""What every method is (``Method``) and what it may use of its run (``Context``).

A method says only what a round asks for (``request``), how an answer becomes candidates
(``answer_candidates``) and, where it has them, the later requests per candidate (``finish``).
Everything else (journaled requests and their replay, the pool and its similarity index,
screening, acceptance in candidate order, stop rules and budgets) is the loop's, in loop.py.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from selfinstruct.config import Config
from selfinstruct.formats.task import Task
from selfinstruct.generation.candidate import Candidate, Request
from selfinstruct.generation.prompts import PromptSet


@dataclass
class Context:
    """What a method may use of its run, and nothing else."""

    config: Config
    prompts: PromptSet
    seeds: list[Task]
    machine: list[str]  # the machine-made instructions accepted so far, in the order they joined the pool
    pool_after: list[int]  # len(machine) after each round committed
    ask: Callable[[Request], Awaitable[dict]]  # the journaled answer to a request
    reject: Callable[..., None]  # reject(id, request, reason, instruction, *, detail, most_similar, lineage)
    structured_answer: Callable  # a --structured answer read against its request's shape (loop.py)
    usable_instances: Callable  # a candidate's instances that pass the instance rules, at most as many as asked
    count_generated: Callable[[], None]  # an instruction the method turned away before screening
    lag: int = 2  # the method's: a round's prompts draw on the pool as committed this many rounds before it

    def known(self, round_: int) -> int:
        """How many of ``machine`` a round's prompts may draw on: the pool as committed ``lag`` rounds before
        it, fixed before the round is sent (the loop waits for it, for a method that ``draws_from_pool``)."""
        return self.pool_after[round_ - self.lag] if round_ >= self.lag else 0

    @property
    def continued(self) -> bool:
        """The completion API: prompts are continued, so answers are cut at stop strings."""
        return self.config.api == "completion"

    @property
    def structured(self) -> bool:
        """--structured: answers are JSON, read with ``structured_answer``."""
        return bool(self.config.structured)


class Method:
    name: ClassVar[str]  # the --mode value
    templates: ClassVar[dict[str, set[str]]]  # prompts/<lang>/<name>.txt it reads -> their $placeholders
    stages: ClassVar[dict[str, int]]  # its request stages -> priority (lower is sent first when slots are scarce)
    # For the dry run's estimate: requests of each stage per accepted task, completion tokens per request.
    rates: ClassVar[dict[str, dict[str, float]]]
    draws_from_pool: ClassVar[bool] = True  # its prompts show machine-made tasks (Context.known)
    # How many rounds back the pool its prompts show was committed: enough rounds that their work keeps
    # every slot busy while the oldest one waits for its slowest answers (bench/bench_busy.py).
    lag: ClassVar[int] = 2

    def __init__(self, context: Context):
        self.context = context

    def request(self, rng: random.Random, round_: int, i: int) -> Request:
        """The round's i-th first request; ``rng`` is the round's, seeded by (seed, round)."""
        raise NotImplementedError

    def answer_candidates(self, request: Request, answer: dict, screen: Callable[..., Candidate | None]
                          ) -> list[Candidate]:
        """The candidates of one answered request, each passed through ``screen(request, j, text, exclude=())``
        (the loop's), in a fixed order; what is unusable is rejected with ``context.reject``."""
        raise NotImplementedError

    # Later requests for one candidate, for a method that has them: ``async def finish(self, candidate)``,
    # which sets ``candidate.instances``, or records its rejections on the candidate.
    finish: Callable[[Candidate], Awaitable[None]] | None = None

    def listed(self, request: Request, answer: dict, parse: Callable) -> list:
        """The items of an answer that is a numbered list, read by the stage's ``parse`` (parsing.items);
        what the parser dropped is rejected with its reason, an answer with nothing in it as unparseable."""
        context = self.context
        parsed = parse(answer["text"], request.next_number, context.continued,
                       cut_off=answer["finish_reason"] == "length")
        for k, dropped in enumerate(parsed.dropped):
            context.reject(f"{request.slot}.{len(parsed.items) + k}", request, dropped.reason, dropped.text)
        if not parsed.items and not parsed.dropped:
            context.reject(f"{request.slot}.0", request, "unparseable_response", answer["text"][:500])
        return parsed.items

    async def ask_later(self, candidate: Candidate, request: Request, reject: Callable[..., None]) -> dict | None:
        """The answer to one of a candidate's later requests; None when the request failed (rejected as
        ``request_failed``) or, with --structured, its JSON does not fit the request's shape (rejected
        with the reason). With --structured the answer carries the JSON it holds as ``value``."""
        answer = await self.context.ask(request)
        if answer["error"]:
            reject(candidate.id, request, f"request_failed:{answer['error']}", candidate.instruction)
            return None
        if not self.context.structured or request.shape is None:
            return answer
        reading = self.context.structured_answer(request, answer, candidate.id, candidate.instruction, reject)
        return None if reading.value is None else answer | {"value": reading.value}

    def joined(self, task: dict) -> None:
        """A task joined the pool (accepted now, or replayed on resume), as written to tasks.jsonl."""

    def first_requests(self) -> dict[str, Request]:
        """The first request of each stage, as a run would send it (for the dry run)."""
        raise NotImplementedError
