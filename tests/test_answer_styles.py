"""The styles real chat models write cost no task and corrupt none.

The same run against the scripted server twice: once answering exactly in the prompts' format, once in
the seeded mix of styles (intro sentences, bold and markdown headings, bullets, quotes, JSON in code
fences; tests/answer_styles.py). The model's content is the same both times (concurrency 1: the same
order), so the parsers must accept exactly the same tasks, with the same instances.
"""

from __future__ import annotations

import json

import pytest
from answer_styles import WEIGHTS
from fake_model import FakeModel
from openai_stub import ScriptedServer

from selfinstruct import Config, generate

STAGES = {"self-instruct": ("instructions", "classify", "instances", "instances_classification"),
          "alpaca": ("alpaca",), "evol": ("evolve", "compare")}


def run(tmp_path, styles: str, **settings) -> tuple[list[tuple], FakeModel]:
    model = FakeModel(styles=styles)
    with ScriptedServer(model) as server:
        generate(Config(base_url=server.base_url, api_key="sk-test-key", model="stub-model", num_instructions=60,
                        output=tmp_path / styles, concurrency=1, requests_per_round=4, **settings))
    lines = (tmp_path / styles / "tasks.jsonl").read_text(encoding="utf-8").splitlines()
    tasks = [json.loads(line) for line in lines]
    return [(t["instruction"], t["instances"], t.get("judge")) for t in tasks], model


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("mode, judge", [("self-instruct", False), ("alpaca", False), ("evol", False),
                                         ("self-instruct", True)])
@pytest.mark.slow
def test_the_styles_of_real_chat_models_lose_and_corrupt_no_task(tmp_path, lang, mode, judge):
    settings = dict(lang=lang, mode=mode, **({"judge": True, "min_score": 2} if judge else {}))
    clean, _ = run(tmp_path, "clean", **settings)
    mixed, model = run(tmp_path, "mixed", **settings)
    assert len(clean) == 60 and mixed == clean
    drawn = {(stage, style) for stage, style in model.styles.drawn}
    for stage in STAGES[mode] + (("judge",) if judge else ()):
        assert {style for s, style in drawn if s == stage} == set(WEIGHTS[stage]), stage  # every style met
