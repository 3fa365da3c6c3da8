"""A dry run: what a run would send and what it would cost, without sending anything.

The first prompt of each stage is built by the same code a run uses. The estimate scales
per-stage rates to the target: measured ones when the run directory already holds
answers, otherwise the method's ``rates`` (a chat model's typical yield; say so when used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from selfinstruct.config import Config
from selfinstruct.store.journal import Journal
from selfinstruct.generation import judge
from selfinstruct.generation.candidate import Candidate
from selfinstruct.generation.methods.registry import METHODS
from selfinstruct.generation.loop import Run
from selfinstruct.endpoint.pricing import Price
from selfinstruct.endpoint.tokens import PromptTokens, prompt_tokens
from selfinstruct.store.rundir import (ANSWER_REQUIRED, SignatureMismatch, answer_problem, answered, check_place,
                                      read_config, signature_changes)
from selfinstruct.generation.session import load_prompts, prices_of
from selfinstruct.formats.seeds import load_start_tasks

# Seconds per request; per-stage defaults are each method's ``rates``.
DEFAULT_SECONDS = {"local": 5.0, "remote": 10.0}
JUDGED_PER_TASK = 1 / 0.9  # with --min-score some judged tasks are rejected


@dataclass
class Plan:
    prompts: list[tuple[str, str]]  # (stage, prompt) as a run sends them
    remaining: int  # tasks still to accept
    # stage -> its first prompt's tokens, and how they were counted
    prompt_tokens: dict[str, tuple[int, PromptTokens]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)  # stage -> requests
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    price: Price | None = None
    seconds: float = 0.0
    parallel: int = 1  # requests answered at once
    rates: str = "defaults"  # or where they were measured
    response_formats: dict[str, dict] = field(default_factory=dict)  # stage -> what it sends, with --structured
    batch: bool = False  # --batch: the cost is at batch prices, and each batch may take up to WINDOW
    online_cost: float | None = None  # with --batch: the same requests sent one by one


def plan(config: Config) -> Plan:
    """The prompts and the estimate for ``config``; nothing is sent and nothing is written."""
    config = config.resolve()
    method = METHODS[config.mode]
    prompts = load_prompts(config)
    if check_place(config.output):  # what the run would refuse, the dry run refuses too: other settings
        changes = signature_changes(read_config(config.output)["signature"], config.signature(prompts.files))
        if changes:
            raise SignatureMismatch(config.output, changes)
    run = Run(config, prompts, load_start_tasks(config)[0])
    firsts = run.method.first_requests()
    rates, counted = method.rates, {}
    if config.judge:  # one judgement per complete candidate: a little more than one per accepted task
        example = Candidate("r0000-0-00", run.seeds[0].instruction, {"round": 0}, [], instances=run.seeds[0].instances)
        firsts[judge.STAGE] = run.judge_request(example)
        rates = {"requests_per_task": {**rates["requests_per_task"], judge.STAGE: JUDGED_PER_TASK},
                 "completion_tokens": {**rates["completion_tokens"], judge.STAGE: 30}}
    for stage, request in firsts.items():
        judged_elsewhere = stage == judge.STAGE and config.judge_base_url is not None
        counter = prompt_tokens(config.judge_model if stage == judge.STAGE else config.model, config.api,
                                local=config.local and not judged_elsewhere)
        counted[stage] = (counter.count(request.prompt), counter)
    measured = _measured(config)
    remaining = max(config.num_instructions - (measured["accepted"] if measured else 0), 0)
    result = Plan([(stage, request.prompt) for stage, request in firsts.items()], remaining,
                  prompt_tokens=counted, rates=f"measured in {config.output}" if measured else "defaults",
                  response_formats={stage: run.response_format(request) for stage, request in firsts.items()
                                    if run.response_format(request)})
    defaults, seconds, cost, online = rates, 0.0, 0.0, 0.0
    result.price, judge_price = prices_of(config)
    online_price, online_judge_price = prices_of(replace(config, batch=False))
    result.batch = config.batch
    for stage, per_task in defaults["requests_per_task"].items():
        rates = measured["stages"].get(stage) if measured else None
        count = math.ceil(remaining * (rates["requests"] / measured["accepted"] if rates and measured["accepted"]
                                       else per_task))
        per_prompt = rates["prompt_tokens"] if rates else counted[stage][0]
        completion = rates["completion_tokens"] if rates else min(defaults["completion_tokens"][stage],
                                                                   firsts[stage].max_tokens)
        result.requests[stage] = count
        result.tokens_in += round(count * per_prompt)
        result.tokens_out += round(count * completion)
        price = judge_price if stage == judge.STAGE else result.price
        cost = None if cost is None or price is None else cost + price.cost(count * per_prompt, count * completion)
        price = online_judge_price if stage == judge.STAGE else online_price
        online = None if online is None or price is None else online + price.cost(count * per_prompt,
                                                                                   count * completion)
        seconds += count * (rates["seconds"] if rates and rates["seconds"] else
                            DEFAULT_SECONDS["local" if config.local else "remote"])
    result.parallel = 1 if config.local else config.concurrency  # the embedded server answers one at a time
    result.seconds = seconds / result.parallel
    total = sum(result.requests.values())
    if config.rpm:
        result.seconds = max(result.seconds, total * 60 / config.rpm)
    if config.tpm:
        result.seconds = max(result.seconds, (result.tokens_in + result.tokens_out) * 60 / config.tpm)
    result.cost, result.online_cost = cost, online if config.batch else None
    return result


def _measured(config: Config) -> dict | None:
    """Per-stage means of an existing run's answers, and its accepted tasks; None for a new run."""
    if not (config.output / "config.json").exists():
        return None
    responses = [record for record in Journal(config.output / "responses.jsonl").read(
        required=ANSWER_REQUIRED, check=answer_problem) if answered(record)]
    accepted = len(Journal(config.output / "tasks.jsonl").read())
    if not responses or not accepted:
        return None
    stages: dict[str, dict] = {}
    for record in responses:
        totals = stages.setdefault(record["stage"], {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                     "seconds": 0.0})
        totals["requests"] += 1
        for key in ("prompt_tokens", "completion_tokens", "seconds"):
            totals[key] += record.get(key, 0) or 0
    for totals in stages.values():
        for key in ("prompt_tokens", "completion_tokens", "seconds"):
            totals[key] /= totals["requests"]
    return {"accepted": accepted, "stages": stages}
