"""Self-Instruct (Wang et al., 2022): ask for new instructions after examples from the pool; then, per
instruction, ask whether it is a classification task and generate its instances, output-first for
classification (so labels are not all alike) and input-first otherwise."""

from __future__ import annotations

import random

from selfinstruct.generation.candidate import Candidate, Request
from selfinstruct.generation.parsing.items import parse_instances, parse_instructions
from selfinstruct.generation.parsing.yes_no import parse_yes_no
from selfinstruct.generation.methods.base import Method
from selfinstruct.formats.task import Instance

CLASSIFY_TOKENS = 16


class SelfInstruct(Method):
    name = "self-instruct"
    templates = {"instructions": {"examples", "next"}, "classify": {"instruction"}, "instances": {"instruction"},
                 "instances_classification": {"instruction"}}
    stages = {"instructions": 0, "classify": 1, "instances": 2}
    lag = 6
    # ~10 instructions per request, 60% pass the filters, 90% of those get usable instances.
    rates = {"requests_per_task": {"instructions": 1 / 5.4, "classify": 1 / 0.9, "instances": 1 / 0.9},
             "completion_tokens": {"instructions": 250, "classify": 3, "instances": 150}}

    def request(self, rng: random.Random, round_: int, i: int) -> Request:
        context, config = self.context, self.context.config
        examples = rng.sample([t.instruction for t in context.seeds], min(config.seed_examples, len(context.seeds)))
        # The pool as it stood ``lag`` rounds back: fixed before this round's requests may be sent.
        known = context.known(round_)
        examples += [context.machine[k] for k in rng.sample(range(known), min(config.machine_examples, known))]
        rng.shuffle(examples)
        next_number = len(examples) + 1
        prompt = context.prompts.render("instructions", examples=context.prompts.numbered(examples),
                                    next=context.prompts.task_item(next_number))
        stop = [context.prompts.task_item(next_number + 12)] + (["\n\n"] if context.continued else [])
        return Request("instructions", f"r{round_}.instructions.{i}", round_, prompt,
                       config.max_tokens, config.temperature, stop, next_number, shape="instructions")

    def answer_candidates(self, request: Request, answer: dict, screen) -> list[Candidate]:
        """Parse the answer and keep the instructions that pass screening."""
        if self.context.structured:
            return self._structured_candidates(request, answer, screen)
        items = self.listed(request, answer, parse_instructions)
        return [c for c in (screen(request, j, text) for j, text in enumerate(items)) if c is not None]

    def _structured_candidates(self, request: Request, answer: dict, screen) -> list[Candidate]:
        """The instructions of a JSON answer (--structured); one cut off at max_tokens is rejected. Blank
        strings are no instructions, as blank lines are none in a free-text answer."""
        context = self.context
        reading = context.structured_answer(request, answer, f"{request.slot}.0", answer["text"][:500])
        items = [text.strip() for text in (reading.value["instructions"] if reading.value else []) if text.strip()]
        if reading.lost is not None:
            context.reject(f"{request.slot}.{len(items)}", request, "cut_off", reading.lost)
        return [c for c in (screen(request, j, text) for j, text in enumerate(items)) if c is not None]

    async def finish(self, candidate: Candidate) -> None:
        """Classification identification, then instance generation (output-first for classification).
        Rejections wait on the candidate, so that rejected.jsonl does not depend on answer timing."""
        context = self.context

        def reject(*args, **kwargs):
            candidate.rejections.append((args, kwargs))

        request = self._classify_request(candidate)
        answer = await self.ask_later(candidate, request, reject)
        if answer is None:
            return
        candidate.is_classification = (answer["value"]["classification"] if context.structured
                                       else parse_yes_no(answer["text"]))
        if candidate.is_classification is None:
            reject(candidate.id, request, "unparseable_classification", candidate.instruction,
                   detail=answer["text"][:200])
            return
        request = self._instances_request(candidate, candidate.is_classification)
        answer = await self.ask_later(candidate, request, reject)
        if answer is None:
            return
        if context.structured:
            answer_key = "label" if candidate.is_classification else "output"
            instances = [Instance(example["input"], example[answer_key]) for example in answer["value"]["examples"]]
        else:
            parsed = parse_instances(answer["text"], candidate.is_classification, context.continued,
                                     cut_off=answer["finish_reason"] == "length")
            for k, dropped in enumerate(parsed.dropped):  # one example each: the candidate may keep the others
                reject(f"{candidate.id}.{k}", request, dropped.reason, candidate.instruction, detail=dropped.text)
            instances = parsed.items
            if not instances and parsed.dropped:
                return
        if not instances:
            reject(candidate.id, request, "unparseable_instances", candidate.instruction,
                   detail=answer["text"][:500])
            return
        candidate.instances = context.usable_instances(candidate, request, instances, reject)

    def _classify_request(self, candidate: Candidate) -> Request:
        context, round_ = self.context, candidate.source["round"]
        return Request("classify", f"r{round_}.classify.{candidate.id}", round_,
                       context.prompts.render("classify", instruction=candidate.instruction),
                       CLASSIFY_TOKENS, 0.0, ["\n"] if context.continued else None, shape="classify")

    def _instances_request(self, candidate: Candidate, classification: bool) -> Request:
        """Output-first (label, then input) for classification tasks, input-first otherwise."""
        context, round_ = self.context, candidate.source["round"]
        stage = "instances_classification" if classification else "instances"
        return Request("instances", f"r{round_}.instances.{candidate.id}", round_,
                       context.prompts.render(stage, instruction=candidate.instruction),
                       context.config.max_tokens, context.config.temperature, ["\nTask:", "\n任务："], shape=stage)

    def first_requests(self) -> dict[str, Request]:
        example = Candidate("r0000-0-00", self.context.seeds[0].instruction, {"round": 0}, [])
        return {"instructions": self.request(random.Random(f"{self.context.config.seed}:0"), 0, 0),
                "classify": self._classify_request(example),
                "instances": self._instances_request(example, False),
                "instances_classification": self._instances_request(example, True)}
