"""Ways to grow a dataset: one module per method, each a ``Method`` listed in ``METHODS``.

``Run`` (pipeline.py) keeps what every method shares: journaled requests and their replay,
the pool and its similarity index, screening (``Run.screen``: the heuristic rules and ROUGE-L
against the pool), acceptance in candidate order, stop rules and budgets. A method says only
what a round asks for (``request``), how an answer becomes candidates (``answer_candidates``)
and, where it has them, the later requests per candidate (``finish``).

To add a method: copy ``alpaca.py`` (one request yields whole tasks) or ``self_instruct.py``
(later requests per candidate), write its prompts under ``prompts/<lang>/``, and list it below.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

from selfinstruct.generation.candidate import Candidate, Request

if TYPE_CHECKING:
    from selfinstruct.generation.loop import Run


class Method:
    name: ClassVar[str]  # the --mode value
    templates: ClassVar[dict[str, set[str]]]  # prompts/<lang>/<name>.txt it reads -> their $placeholders
    stages: ClassVar[dict[str, int]]  # its request stages -> priority (lower is sent first when slots are scarce)
    # For the dry run's estimate: requests of each stage per accepted task, completion tokens per request.
    rates: ClassVar[dict[str, dict[str, float]]]

    def __init__(self, run: Run):
        self.run = run

    def request(self, rng: random.Random, round_: int, i: int) -> Request:
        """The round's i-th first request; ``rng`` is the round's, seeded by (seed, round)."""
        raise NotImplementedError

    def answer_candidates(self, request: Request, answer: dict, screen: Callable[..., Candidate | None]
                          ) -> list[Candidate]:
        """The candidates of one answered request, each passed through ``screen`` (``Run.round_screening``),
        in a fixed order; what is unusable is rejected with ``run.reject``."""
        raise NotImplementedError

    # Later requests for one candidate, for a method that has them: ``async def finish(self, candidate)``,
    # which sets ``candidate.instances``, or records its rejections on the candidate.
    finish: Callable[[Candidate], Awaitable[None]] | None = None

    async def candidates(self, requests: list[Request], answers: list[dict]) -> list[Candidate]:
        """The candidates of a round's answered requests, in request order, screened against the pool
        and against each other."""
        run, found = self.run, []
        screen = run.round_screening()
        for request, answer in zip(requests, answers):
            await run.pause()
            if not answer["error"]:
                found += self.answer_candidates(request, answer, screen)
        return found

    async def complete(self, candidates: list[Candidate], room: int) -> list[Candidate]:
        """``finish`` each candidate, where the method has later requests; near the target only what can
        still be accepted (``room``: tasks still wanted; twice that, for rejections)."""
        if self.finish is None:
            return candidates
        candidates = candidates[: 2 * room]
        await self.run.gather(*(self.finish(c) for c in candidates))
        return candidates

    def joined(self, task: dict) -> None:
        """A task joined the pool (accepted now, or replayed on resume), as written to tasks.jsonl."""

    def first_requests(self) -> dict[str, Request]:
        """The first request of each stage, as a run would send it (for the dry run)."""
        raise NotImplementedError


from selfinstruct.generation.methods.alpaca import Alpaca  # noqa: E402  (the methods need Method)
from selfinstruct.generation.methods.evol import Evol  # noqa: E402
from selfinstruct.generation.methods.self_instruct import SelfInstruct  # noqa: E402

METHODS: dict[str, type[Method]] = {method.name: method for method in (SelfInstruct, Alpaca, Evol)}
