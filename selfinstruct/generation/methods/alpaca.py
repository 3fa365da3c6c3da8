"""Stanford Alpaca: one request asks for a numbered list of whole tasks (instruction, input, output)
after a few seed tasks shown in full; no later requests."""

from __future__ import annotations

import random

from selfinstruct.generation.candidate import Candidate, Request
from selfinstruct.generation.parsing.items import parse_alpaca_tasks
from selfinstruct.generation.methods.base import Method
from selfinstruct.formats.task import Instance

EXAMPLES = 3


class Alpaca(Method):
    name = "alpaca"
    templates = {"alpaca": {"examples", "count", "next"}}
    stages = {"alpaca": 0}
    draws_from_pool = False  # seeds only: its rounds never wait for one to be committed
    rates = {"requests_per_task": {"alpaca": 1 / 6.0}, "completion_tokens": {"alpaca": 800}}

    def request(self, rng: random.Random, round_: int, i: int) -> Request:
        context, config = self.context, self.context.config
        shown = rng.sample(context.seeds, min(EXAMPLES, len(context.seeds)))
        examples = context.prompts.alpaca_examples(
            [(t.instruction, t.instances[0].input if t.instances else "", t.instances[0].output if t.instances else "")
             for t in shown])
        next_number = len(shown) + 1
        last = len(shown) + config.tasks_per_request
        prompt = context.prompts.render("alpaca", examples=examples, count=config.tasks_per_request,
                                    next=context.prompts.alpaca_item(next_number))
        return Request("alpaca", f"r{round_}.alpaca.{i}", round_, prompt, config.max_tokens,
                       config.temperature, [f"\n{last + 1}."], next_number, shape="alpaca")

    def answer_candidates(self, request: Request, answer: dict, screen) -> list[Candidate]:
        """Parse complete tasks; keep those that pass screening and the instance checks. A task the parser
        dropped (cut off, or missing its instruction or output) is rejected with the parser's reason."""
        if self.context.structured:
            return self._screened(request, self._structured_tasks(request, answer), screen)
        return self._screened(request, self.listed(request, answer, parse_alpaca_tasks), screen)

    def _screened(self, request: Request, tasks: list[dict], screen) -> list[Candidate]:
        context, candidates = self.context, []
        for j, task in enumerate(tasks):
            candidate = screen(request, j, task["instruction"])
            if candidate is None:
                continue
            candidate.instances = context.usable_instances(candidate, request, [Instance(task["input"], task["output"])])
            if candidate.instances:
                candidates.append(candidate)
        return candidates

    def _structured_tasks(self, request: Request, answer: dict) -> list[dict]:
        """The tasks of a JSON answer (--structured); one cut off at max_tokens is rejected."""
        context = self.context
        reading = context.structured_answer(request, answer, f"{request.slot}.0", answer["text"][:500])
        tasks = [{key: task[key].strip() for key in ("instruction", "input", "output")}
                 for task in (reading.value["tasks"] if reading.value else [])]
        if reading.lost is not None:
            context.reject(f"{request.slot}.{len(tasks)}", request, "cut_off", reading.lost)
        return tasks

    def first_requests(self) -> dict[str, Request]:
        return {"alpaca": self.request(random.Random(f"{self.context.config.seed}:0"), 0, 0)}
