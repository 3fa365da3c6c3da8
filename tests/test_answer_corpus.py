"""Answers written the way chat models answer, and what each must parse to (issue 22).

tests/data/answers/<stage>/<lang>/<NN>-<style>.txt is an answer's raw text; <NN>-<style>.json beside
it holds the parser's arguments and the expected result. For the list stages (instructions,
instances, alpaca) that is the items kept and what is dropped, with its reason; for the yes/no
stages (classify, compare) the answer (true, false, or null for none); for evolve the rewrite; for
judge the score and reason. The answers are our own, written from how chat models are known to answer
(openings, bold and headings, quotes, bullets, JSON, code, closing remarks, cut-off responses).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfinstruct.judge import parse_score
from selfinstruct.parsing import parse_alpaca_tasks, parse_instances, parse_instructions, parse_rewrite, parse_yes_no

ANSWERS = Path(__file__).resolve().parent / "data" / "answers"
STAGES = ("instructions", "classify", "instances", "instances_classification", "alpaca", "evolve", "compare", "judge")
LANGS = ("en", "zh")
CASES = sorted(ANSWERS.glob("*/*/*.json"))


def _dropped(parsed) -> list[dict]:
    return [{"reason": d.reason, "text": d.text} for d in parsed.dropped]


def parse(stage: str, text: str, spec: dict) -> dict:
    """The parse of one answer, in the shape of its expectation."""
    if stage == "instructions":
        parsed = parse_instructions(text, spec["next_number"], spec["continued"], spec["cut_off"])
        return {"items": parsed.items, "dropped": _dropped(parsed)}
    if stage in ("instances", "instances_classification"):
        parsed = parse_instances(text, stage == "instances_classification", spec["continued"], spec["cut_off"])
        return {"items": [{"input": i.input, "output": i.output} for i in parsed.items], "dropped": _dropped(parsed)}
    if stage == "alpaca":
        parsed = parse_alpaca_tasks(text, spec["next_number"], spec["continued"], spec["cut_off"])
        return {"items": parsed.items, "dropped": _dropped(parsed)}
    if stage in ("classify", "compare"):
        return {"answer": parse_yes_no(text)}
    if stage == "evolve":
        return {"rewrite": parse_rewrite(text)}
    score, reason = parse_score(text)
    return {"score": score, "reason": reason}


def expected(stage: str, spec: dict) -> dict:
    if stage in ("instructions", "instances", "instances_classification", "alpaca"):
        return {"items": spec["items"], "dropped": spec.get("dropped", [])}
    keys = {"classify": ("answer",), "compare": ("answer",), "evolve": ("rewrite",), "judge": ("score", "reason")}
    return {key: spec[key] for key in keys[stage]}


@pytest.mark.parametrize("case", CASES, ids=[str(c.relative_to(ANSWERS).with_suffix("")) for c in CASES])
def test_answer_parses_as_expected(case):
    stage = case.parent.parent.name
    text = case.with_suffix(".txt").read_text(encoding="utf-8")
    spec = json.loads(case.read_text(encoding="utf-8"))
    assert parse(stage, text, spec) == expected(stage, spec)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("lang", LANGS)
def test_every_stage_and_language_has_a_dozen_answers(stage, lang):
    folder = ANSWERS / stage / lang
    answers = sorted(folder.glob("*.txt"))
    assert len(answers) >= 12, folder
    assert sorted(a.with_suffix(".json") for a in answers) == sorted(folder.glob("*.json"))


def test_the_list_stages_show_every_reason_for_dropping():
    reasons = {d["reason"] for case in CASES for d in json.loads(case.read_text(encoding="utf-8")).get("dropped", [])}
    assert reasons >= {"cut_off", "incomplete_instance", "incomplete_task"}
