"""Ways to grow a dataset: one module per method, each a ``Method`` listed in ``METHODS``.

``Run`` (pipeline.py) keeps what every method shares: journaled requests and their replay,
the pool and its similarity index, screening (``Run.screen``: the heuristic rules and ROUGE-L
against the pool), acceptance in candidate order, stop rules and budgets. A method says only
what a round asks for and how the answers become candidates.

To add a method: copy ``alpaca.py`` (one request yields whole tasks) or ``self_instruct.py``
(later requests per candidate), write its prompts under ``prompts/<lang>/``, and list it below.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, ClassVar

from ..candidate import Candidate, Request

if TYPE_CHECKING:
    from ..pipeline import Run


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

    async def candidates(self, requests: list[Request], answers: list[dict]) -> list[Candidate]:
        """The candidates of a round's answers, in a fixed order, each screened with ``run.screen``."""
        raise NotImplementedError

    async def complete(self, candidates: list[Candidate], room: int) -> list[Candidate]:
        """Later requests per candidate, where the method has them (``room``: tasks still wanted)."""
        return candidates

    def joined(self, task: dict) -> None:
        """A task joined the pool (accepted now, or replayed on resume), as written to tasks.jsonl."""

    def first_requests(self) -> dict[str, Request]:
        """The first request of each stage, as a run would send it (for the dry run)."""
        raise NotImplementedError


from .alpaca import Alpaca  # noqa: E402  (the methods need Method)
from .evol import Evol  # noqa: E402
from .self_instruct import SelfInstruct  # noqa: E402

METHODS: dict[str, type[Method]] = {method.name: method for method in (SelfInstruct, Alpaca, Evol)}
