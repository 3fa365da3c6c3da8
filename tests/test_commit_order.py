"""The same answers in any order and timing give the same run, byte for byte (issue 24).

The scripted model answers each prompt as a function of the prompt alone (helpers.KeyedModel); the
server holds each answer for a random, long-tailed time, different in each run, and the runs differ
in concurrency too. tasks.jsonl and rejected.jsonl must not differ: decisions are made in slot order,
whatever order the answers come back in.
"""

from __future__ import annotations

import json

import pytest
from fake_model import FakeModel
from helpers import Delayed, KeyedModel, run_config
from openai_stub import ScriptedServer

from selfinstruct import generate

RUNS = {
    "self-instruct-en": dict(mode="self-instruct", lang="en", num_instructions=24),
    "alpaca-zh": dict(mode="alpaca", lang="zh", num_instructions=30, tasks_per_request=4),
    "evol-en": dict(mode="evol", lang="en", num_instructions=16),
    "self-instruct-zh-judge": dict(mode="self-instruct", lang="zh", num_instructions=16, judge=True, min_score=3),
    "alpaca-en-judge": dict(mode="alpaca", lang="en", num_instructions=12, judge=True, min_score=2),
}
TIMINGS = [  # (concurrency, delay seed or None for no delay)
    (1, None),
    (8, 1),
    (3, 2),
]


def derived(tmp_path, name: str, concurrency: int, seed: int | None) -> tuple[bytes, bytes, int]:
    model = KeyedModel()
    with ScriptedServer(model if seed is None else Delayed(model, seed)) as server:
        run = tmp_path / f"{name}-{concurrency}-{seed}"
        summary = generate(run_config(server, tmp_path, output=run, requests_per_round=4, concurrency=concurrency,
                                      **RUNS[name]))
    assert summary["complete"] and summary["accepted"] == RUNS[name]["num_instructions"]
    return (run / "tasks.jsonl").read_bytes(), (run / "rejected.jsonl").read_bytes(), summary["requests"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_same_answers_in_any_order_give_the_same_run(tmp_path, name):
    runs = [derived(tmp_path, name, concurrency, seed) for concurrency, seed in TIMINGS]
    tasks, rejected, _ = runs[0]
    assert len(tasks.splitlines()) == RUNS[name]["num_instructions"]
    assert rejected, "the run meets rejections, so their order is checked too"
    for concurrency_tasks, concurrency_rejected, _ in runs[1:]:
        assert concurrency_tasks == tasks
        assert concurrency_rejected == rejected
    reasons = {json.loads(line)["reason"] for line in rejected.splitlines()}
    assert reasons, reasons


@pytest.mark.parametrize("mode, stage", [("self-instruct", "classify"), ("evol", "compare"), ("alpaca", "judge")])
def test_near_the_target_no_more_is_asked_than_can_be_accepted(tmp_path, mode, stage):
    """With answers that never fail after screening, a run of 5 asks each later stage exactly 5 times, though
    its first requests give more candidates and 8 slots are free."""
    with ScriptedServer(Delayed(FakeModel(styles="clean"), seed=3)) as server:
        summary = generate(run_config(server, tmp_path, mode=mode, lang="en", num_instructions=5, concurrency=8,
                                      requests_per_round=8, judge=True))
    assert summary["accepted"] == 5
    assert summary["requests_by_stage"][stage] == 5
    assert summary["requests_by_stage"]["judge"] == 5
