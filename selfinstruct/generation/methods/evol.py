"""Evol-Instruct (WizardLM, Xu et al., 2023): rewrite instructions from the pool to be deeper
(in-depth: add a constraint, deepen, concretise, add reasoning steps, add input) or broader
(in-breadth: a new task in the same field), answer each, and eliminate the failed evolutions.

The elimination step is the paper's, all four rules, each rejection with its reason:
``copied_prompt`` (the rewrite copies the prompt's scaffolding), ``no_information_gain`` (the
model, asked with ``evolve_compare``, says the rewrite adds nothing to its parent; journaled like
every answer), ``could_not_answer`` (the response apologises or refuses, and is short) and
``no_content`` (the response is only punctuation and stop words). An evolution is also screened
like any new instruction (the heuristic rules; ROUGE-L against the pool, its own ancestors aside,
since a rewrite keeps most of its parent). Each task records its lineage: parent id, operation, depth.
"""

from __future__ import annotations

import random
import re
from typing import NamedTuple

from selfinstruct.generation.candidate import Candidate, Request
from selfinstruct.text.rules import response_rejection
from selfinstruct.generation.parsing.rewrite import parse_rewrite
from selfinstruct.generation.parsing.yes_no import parse_yes_no
from selfinstruct.generation.prompts import LABELS
from selfinstruct.generation.methods.base import Method
from selfinstruct.formats.task import Instance, Task

IN_DEPTH = ("constraints", "deepen", "concretize", "reasoning", "complicate_input")
OPERATIONS = (*IN_DEPTH, "breadth")  # drawn uniformly, so in-breadth is one evolution in six
MAX_DEPTH = 4  # WizardLM evolved its dataset four times
COMPARE_TOKENS = 16
# A base model continuing the respond prompt goes on to another "Response:" or "Instruction:".
RESPONSE_STOPS = ["\nResponse:", "\n回答：", "\nInstruction:", "\n指令："]
DRAWS = 20  # tries to draw a parent that may evolve further, before falling back on a seed
# The scaffolding of an evolving prompt (ours, or the paper's), which an evolved instruction must not copy.
_SCAFFOLDING = re.compile(r"#\s*(?:given|rewritten|created)\s+prompt\s*#|\b(?:given|rewritten|original) "
                          r"(?:prompt|instruction)\b|\brewritten instruction\b|改写后的指令|原指令|给定的指令",
                          re.IGNORECASE)


class Entry(NamedTuple):
    """A pool instruction as evolution sees it."""

    id: str
    instruction: str
    text: str  # what a rewrite starts from: a seed's instruction and its input
    depth: int  # 0 for a seed
    parent: int | None  # the parent's place in the pool


class Evol(Method):
    name = "evol"
    templates = {**{f"evolve_{operation}": {"instruction"} for operation in OPERATIONS},
                 "evolve_compare": {"parent", "child"}, "respond": {"instruction"}}
    stages = {"evolve": 0, "compare": 1, "respond": 2}
    lag = 10  # a round is one rewrite per request and a few requests per rewrite: more rounds for the same work
    # Our guess until a run has answers (the dry run then uses its measured rates): 70% of rewrites pass
    # screening, 85% of those add something, 90% of responses pass.
    rates = {"requests_per_task": {"evolve": 1 / 0.54, "compare": 1 / 0.77, "respond": 1 / 0.9},
             "completion_tokens": {"evolve": 120, "compare": 3, "respond": 400}}

    def __init__(self, context):
        super().__init__(context)
        self.pool = [Entry(task.id or f"seed_task_{i}", task.instruction, self._text_of(task), 0, None)
                     for i, task in enumerate(context.seeds)]  # in the order it grew
        self.place = {entry.id: i for i, entry in enumerate(self.pool)}
        self.asked: dict[str, tuple[int, str]] = {}  # request slot -> (parent's place, operation)

    def request(self, rng: random.Random, round_: int, i: int) -> Request:
        context, config = self.context, self.context.config
        known = len(context.seeds) + context.known(round_)
        draws = (rng.randrange(known) for _ in range(DRAWS))
        parent = next((k for k in draws if self.pool[k].depth < MAX_DEPTH), None)
        if parent is None:  # every draw had evolved as far as it may
            parent = rng.randrange(len(context.seeds))
        operation = rng.choice(OPERATIONS)
        slot = f"r{round_}.evolve.{i}"
        self.asked[slot] = (parent, operation)
        prompt = context.prompts.render(f"evolve_{operation}", instruction=self.pool[parent].text)
        return Request("evolve", slot, round_, prompt, config.max_tokens, config.temperature,
                       ["\n\n"] if context.continued else None, shape="evolve")

    def answer_candidates(self, request: Request, answer: dict, screen) -> list[Candidate]:
        """The answer's rewrite, screened, with its lineage."""
        context = self.context
        parent, operation = self.asked[request.slot]
        lineage = {"parent": self.pool[parent].id, "operation": operation, "depth": self.pool[parent].depth + 1}
        if context.structured:
            reading = context.structured_answer(request, answer, f"{request.slot}.0", answer["text"][:500],
                                            lambda *args, **kwargs: context.reject(*args, **kwargs, lineage=lineage))
            if reading.value is None:
                return []
            text = reading.value["instruction"].strip()
        else:
            text = parse_rewrite(answer["text"])
            if not text or answer["finish_reason"] == "length":
                reason = "cut_off" if text else "unparseable_response"
                context.reject(f"{request.slot}.0", request, reason, text or answer["text"][:500], lineage=lineage)
                return []
        if _SCAFFOLDING.search(text):
            context.count_generated()
            context.reject(f"{request.slot}.0", request, "copied_prompt", text, lineage=lineage)
            return []
        candidate = screen(request, 0, text, exclude=self._lineage_of(parent))
        if candidate is None:
            return []
        candidate.lineage = lineage
        return [candidate]

    async def finish(self, candidate: Candidate) -> None:
        """The elimination step, then the response. Rejections wait on the candidate, so that
        rejected.jsonl does not depend on answer timing."""
        context = self.context

        def reject(*args, **kwargs):
            candidate.rejections.append((args, kwargs | {"lineage": candidate.lineage}))

        request = self._compare_request(candidate)
        answer = await self.ask_later(candidate, request, reject)
        if answer is None:
            return
        adds = answer["value"]["adds_something"] if context.structured else parse_yes_no(answer["text"])
        if not adds:
            reject(candidate.id, request, "no_information_gain" if adds is False else "unparseable_comparison",
                   candidate.instruction, detail=answer["text"][:200])
            return
        request = self._respond_request(candidate)
        answer = await self.ask_later(candidate, request, reject)  # free text even with --structured
        if answer is None:
            return
        response = answer["text"].strip()
        reason = response_rejection(response, context.config.lang)
        if reason is None and answer["finish_reason"] == "length":
            reason = "cut_off"
        if reason:
            reject(candidate.id, request, reason, candidate.instruction, detail=response[:500])
            return
        candidate.instances = context.usable_instances(candidate, request, [Instance("", response)], reject)

    def joined(self, task: dict) -> None:
        lineage = task["lineage"]
        self.place[task["id"]] = len(self.pool)
        self.pool.append(Entry(task["id"], task["instruction"], task["instruction"], lineage["depth"],
                               self.place[lineage["parent"]]))

    def _lineage_of(self, place: int) -> tuple[str, ...]:
        """The instructions of an entry and its ancestors."""
        found = []
        while place is not None:
            found.append(self.pool[place].instruction)
            place = self.pool[place].parent
        return tuple(found)

    def _text_of(self, task: Task) -> str:
        """A seed task as one request: its instruction, and its first instance's input if it has one."""
        given = task.instances[0].input.strip() if task.instances else ""
        if not given:
            return task.instruction
        labels = LABELS[self.context.config.lang]
        return f"{task.instruction}\n{labels['input']}{labels['colon']}{given}"

    def _compare_request(self, candidate: Candidate) -> Request:
        context, round_ = self.context, candidate.source["round"]
        parent = self.pool[self.place[candidate.lineage["parent"]]].text
        return Request("compare", f"r{round_}.compare.{candidate.id}", round_,
                       context.prompts.render("evolve_compare", parent=_one_line(parent),
                                          child=_one_line(candidate.instruction)),
                       COMPARE_TOKENS, 0.0, ["\n"] if context.continued else None, shape="compare")

    def _respond_request(self, candidate: Candidate) -> Request:
        context, round_ = self.context, candidate.source["round"]
        return Request("respond", f"r{round_}.respond.{candidate.id}", round_,
                       context.prompts.render("respond", instruction=candidate.instruction),
                       context.config.max_tokens, context.config.temperature,
                       RESPONSE_STOPS if context.continued else None)

    def first_requests(self) -> dict[str, Request]:
        first = self.request(random.Random(f"{self.context.config.seed}:0"), 0, 0)
        parent, operation = self.asked[first.slot]
        example = Candidate("r0000-0-00", self.pool[parent].instruction, {"round": 0}, [],
                            lineage={"parent": self.pool[parent].id, "operation": operation, "depth": 1})
        return {"evolve": first, "compare": self._compare_request(example), "respond": self._respond_request(example)}


def _one_line(text: str) -> str:
    """The compare prompt lists each instruction on one line."""
    return " ".join(text.split())
