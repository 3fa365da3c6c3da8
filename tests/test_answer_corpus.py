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

from selfinstruct.generation.judge import parse_score
from selfinstruct.generation.parsing.items import parse_alpaca_tasks, parse_instances, parse_instructions
from selfinstruct.generation.parsing.rewrite import parse_rewrite
from selfinstruct.generation.parsing.yes_no import parse_yes_no

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


# A whole run against a chat model that answers the way the corpus does: what the parsers drop is
# counted with its reason, and no markup reaches the tasks.

def _chatty(fake_model):
    def answer(request):
        prompt = request.prompt.rstrip()
        if "Here is a list of tasks" in prompt:
            items = "\n".join(f"- {fake_model.instruction(False)}." for _ in range(4))
            return f"Sure! Here are more tasks:\n\n{items}\n\nLet me know if you need more!"
        if prompt.endswith("Input:"):
            return ("**Example 1**\n**Input:** \"a short note\"\n**Output:** A longer note.\n\n"
                    "### Example 2\n- **Input:** another note\n\n**Example 3**\n**Input:** None\n"
                    "**Output:** Nothing to add.\n\nI hope these examples help!")
        if prompt.endswith("Class label:"):
            return "**Class label: Positive**\nInput: \"Great food.\"\n\n**Class label: Negative**\nInput: Slow service."
        if "new, varied tasks" in prompt:
            tasks = [{"instruction": f"{fake_model.instruction(False)}.", "input": "", "output": "An answer."}
                     for _ in range(3)] + [{"instruction": f"{fake_model.instruction(False)}.", "input": "x"}]
            return "```json\n" + json.dumps(tasks, indent=2) + "\n```"
        return fake_model(request)
    return answer


@pytest.mark.parametrize("mode", ["self-instruct", "alpaca"])
def test_a_run_counts_what_the_parsers_drop(mode, server, fake_model, tmp_path):
    from selfinstruct import Config, generate

    server.responder = _chatty(fake_model)
    summary = generate(Config(base_url=server.base_url, api_key="sk-test-key", model="stub-model", mode=mode,
                              lang="en", num_instructions=6, output=tmp_path / "run", requests_per_round=2,
                              concurrency=2, retry_wait=0.01, timeout=5))
    tasks = [json.loads(line) for line in (tmp_path / "run" / "tasks.jsonl").read_text().splitlines()]
    rejected = [json.loads(line) for line in (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()]
    assert len(tasks) == 6
    texts = [t["instruction"] for t in tasks] + [v for t in tasks for i in t["instances"] for v in i.values()]
    assert not [t for t in texts if "**" in t or "Example" in t or "help" in t or t.startswith('"')], texts
    reason = "incomplete_instance" if mode == "self-instruct" else "incomplete_task"
    dropped = [r for r in rejected if r["reason"] == reason]
    assert dropped and summary["rejected_by_reason"][reason] == len(dropped)
    if mode == "self-instruct":
        assert all(r["detail"] == "input: another note" and r["stage"] == "instances" for r in dropped)
        assert {i["input"] for t in tasks if not t["is_classification"] for i in t["instances"]} == {"a short note", ""}
