"""`--mode evol` against the scripted server: rewrites of pool instructions with their lineage, every
elimination rule meeting an answer that breaks it, and a resume that replays the run without a request."""

from __future__ import annotations

import json
import re

import pytest

from fake_model import FakeModel
from openai_stub import ScriptedServer
from helpers import assert_replays_without_requests
from selfinstruct import Config, generate
from selfinstruct.generation.methods.evol import MAX_DEPTH, OPERATIONS
from selfinstruct.formats.seeds import load_seed_tasks


class Failing(FakeModel):
    """Every few answers breaks one elimination rule: a rewrite that copies the prompt's scaffolding,
    a rewrite the comparison finds adds nothing, a short apology, a response of stop words only."""

    def __init__(self):
        super().__init__()
        self.answers = 0

    def evolve(self, prompt: str, chat: bool) -> str:
        self.answers += 1
        zh = prompt.rstrip().endswith(("改写后的指令：", "新指令："))
        if self.answers % 7 == 3:
            return "#Rewritten Prompt#: " + self.instruction(zh)
        if self.answers % 7 == 5:  # the parent again, in other words: the comparison says it adds nothing
            parent = re.search(r"(?:Instruction|指令)[:：]\n(.*?)\n\n", prompt, re.S).group(1).split("\n")[0]
            return ("换个说法：" if zh else "Same task: ") + parent
        return super().evolve(prompt, chat)

    def compare(self, prompt: str) -> str:
        second = re.findall(r"^(?:Second|第二条)[:：]\s*(.*)$", prompt, re.M)[-1]
        if second.startswith(("Same task: ", "换个说法：")):
            return " 否" if prompt.rstrip().endswith("有新内容：") else " No"
        return super().compare(prompt)

    def respond(self, prompt: str, chat: bool) -> str:
        self.answers += 1
        zh = prompt.rstrip().endswith("回答：")
        if self.answers % 5 == 2:
            return "抱歉，我无法回答这个问题。" if zh else "I'm sorry, but I cannot help with that."
        if self.answers % 5 == 4:
            return "的，了。是！" if zh else "The, a; and of... it."
        return super().respond(prompt, chat)


LAST_LINES = {"en": {"Rewritten instruction:", "New instruction:", "Adds something:", "Response:"},
              "zh": {"改写后的指令：", "新指令：", "有新内容：", "回答："}}


SEEDS = {
    "en": ["Name three fruits.", "Explain how a bicycle gear works.", "Write a short poem about rain.",
           "Summarise the paragraph in one sentence.", "Give two tips for sleeping well."],
    "zh": ["说出三种水果。", "解释自行车变速器的原理。", "写一首关于雨的短诗。", "用一句话概括这段话。", "给出两条睡个好觉的建议。"],
}


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_evol_run_keeps_lineage_and_eliminates_with_reasons(tmp_path, lang):
    run, seeds = tmp_path / "run", tmp_path / "seeds.jsonl"
    given = "这段话很长。" if lang == "zh" else "The paragraph is long."
    seeds.write_text("".join(json.dumps({"instruction": text, "input": given if i == 3 else "", "output": "x"},
                                        ensure_ascii=False) + "\n" for i, text in enumerate(SEEDS[lang])))
    with ScriptedServer(Failing()) as server:
        config = Config(mode="evol", lang=lang, num_instructions=60, seed=5, base_url=server.base_url,
                        api_key="sk-test-key", model="stub-model", output=run, requests_per_round=2,
                        concurrency=1, retry_wait=0.01, timeout=5, seeds=seeds)
        summary = generate(config)
        stages = {request.prompt.rstrip().splitlines()[-1] for request in server.requests}
    assert summary["accepted"] == 60 and summary["complete"] is True
    assert stages == LAST_LINES[lang]  # in-depth and in-breadth rewrites, comparisons, responses

    tasks = [json.loads(line) for line in (run / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]
    depth = {task.id: 0 for task in load_seed_tasks(seeds)}
    for task in tasks:
        lineage = task["lineage"]
        assert lineage["parent"] in depth, "a parent is a seed or an earlier task"
        assert lineage["depth"] == depth[lineage["parent"]] + 1 <= MAX_DEPTH
        assert lineage["operation"] in OPERATIONS
        depth[task["id"]] = lineage["depth"]
        assert [i["input"] for i in task["instances"]] == [""] and task["instances"][0]["output"]
    assert max(depth.values()) == MAX_DEPTH, "evolutions of evolutions, up to the limit"
    assert any(given in r.prompt for r in server.requests), "a seed's input goes into the rewriting prompt"
    assert {t["lineage"]["operation"] for t in tasks} >= {"breadth", "constraints"}

    rejected = [json.loads(line) for line in (run / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    reasons = {r["reason"] for r in rejected}
    assert reasons >= {"copied_prompt", "no_information_gain", "could_not_answer", "no_content"}, reasons
    for r in rejected:
        if r["reason"] in ("copied_prompt", "no_information_gain", "could_not_answer", "no_content"):
            assert r["lineage"]["operation"] in OPERATIONS and r["lineage"]["parent"] in depth, r
        if r["reason"] == "copied_prompt":
            assert "Rewritten Prompt" in r["instruction"] and r["stage"] == "evolve"
        if r["reason"] in ("could_not_answer", "no_content"):
            assert r["stage"] == "respond" and r["detail"]
        if r["reason"] == "no_information_gain":
            assert r["stage"] == "compare" and r["instruction"].startswith(("Same task: ", "换个说法："))

    # The comparison is journaled like every answer: a resume replays the run and asks nothing.
    assert_replays_without_requests(run, tmp_path / "copy")


def test_evol_starts_from_a_dataset_and_leaves_out_what_is_not_a_task(tmp_path):
    data = tmp_path / "data.json"
    records = [{"instruction": f"Describe the {thing} in two sentences.", "input": "", "output": "It is fine."}
               for thing in ("harbour", "orchard", "glacier", "violin")]
    records[2]["id"] = "own-id"
    data.write_text(json.dumps(records[:2] + [{"instruction": "No output here."}, 7] + records[2:]))
    notes = []
    with ScriptedServer(FakeModel()) as server:
        config = Config(mode="evol", lang="en", num_instructions=6, base_url=server.base_url, api_key="sk-test-key",
                        model="stub-model", output=tmp_path / "run", requests_per_round=4, concurrency=1,
                        from_dataset=data)
        generate(config, notify=notes.append)
        prompts = [request.prompt for request in server.requests]
    assert f"{data}: 2 records are not tasks (no instruction or output, or not JSON) and were left out" in notes
    tasks = [json.loads(line) for line in (tmp_path / "run" / "tasks.jsonl").read_text().splitlines()]
    parents = {t["lineage"]["parent"] for t in tasks if t["lineage"]["depth"] == 1}
    assert parents and parents <= {"record_1", "record_2", "own-id", "record_6"}  # records 3 and 4 are no tasks
    assert all(re.search(r"Describe the (harbour|orchard|glacier|violin)", p) for p in prompts if
               p.rstrip().endswith(("Rewritten instruction:", "New instruction:")) and "case" not in p)
    settings = json.loads((tmp_path / "run" / "config.json").read_text())["settings"]
    assert settings["from_dataset"] == str(data) and settings["seeds"] is None


@pytest.mark.parametrize("settings, message", [
    ({"mode": "self-instruct"}, "--from gives --mode evol a dataset to evolve"),
    ({"mode": "evol", "seeds": "seeds.jsonl"}, "give --from or --seeds, not both"),
])
def test_from_is_for_evol_alone(settings, message):
    from selfinstruct.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        Config(from_dataset="data.json", **settings)
