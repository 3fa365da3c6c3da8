"""Recorded runs (every method, and --judge) replay to the same bytes: the guard for any change to how
a method builds its requests or turns answers into tasks (issue 12: methods become parts; issue 23:
the package becomes subpackages; both unchanged in behaviour). The evol and --judge runs were recorded
by the code before issue 23's moves.

tests/data/recorded/<name>/ holds a run's config.json and responses.jsonl, recorded against the
scripted server, and the tasks.jsonl and rejected.jsonl the run derived from them. Resuming a copy
without its derived files must send no request (the recorded endpoint is long gone) and derive
the same bytes. Re-record only when a change of behaviour is intended:

    python tests/test_recorded_runs.py
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from selfinstruct import Config, generate, resume
from selfinstruct.resources import default_prompts, default_seeds

HERE = Path(__file__).resolve().parent
RECORDED = HERE / "data" / "recorded"
DERIVED = ("tasks.jsonl", "rejected.jsonl")
RUNS = {
    "self-instruct-en": dict(mode="self-instruct", lang="en", num_instructions=24, seed=7),
    "alpaca-zh": dict(mode="alpaca", lang="zh", num_instructions=24, seed=11),
    "evol-en": dict(mode="evol", lang="en", num_instructions=16, seed=5),
    "self-instruct-zh-judge": dict(mode="self-instruct", lang="zh", num_instructions=16, seed=3, judge=True,
                                   min_score=3),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_recorded_run_replays_to_the_same_tasks(name, tmp_path):
    run = tmp_path / name
    run.mkdir()
    shutil.copy(RECORDED / name / "responses.jsonl", run / "responses.jsonl")
    stored = json.loads((RECORDED / name / "config.json").read_text())
    assert stored["settings"]["mode"] == RUNS[name]["mode"]
    assert stored["settings"].get("judge", False) == RUNS[name].get("judge", False)
    # Paths were recorded as placeholders; the signature pins the seeds' and prompts' content.
    lang = stored["settings"]["lang"]
    stored["settings"].update(seeds=str(default_seeds(lang)), prompts=str(default_prompts()), output=str(run))
    (run / "config.json").write_text(json.dumps(stored))
    summary = resume(run, api_key="sk-test-key")  # a request would go to a closed port and fail
    assert summary["accepted"] == RUNS[name]["num_instructions"] and summary["complete"] is True
    for file in DERIVED:
        assert (run / file).read_bytes() == (RECORDED / name / file).read_bytes(), file
    assert (run / "responses.jsonl").read_bytes() == (RECORDED / name / "responses.jsonl").read_bytes()


def record() -> None:
    """Run each recorded run named on the command line (all when none is) afresh against the scripted server
    and keep its files."""
    sys.path.insert(0, str(HERE))
    from fake_model import FakeModel
    from openai_stub import ScriptedServer

    class OddModel(FakeModel):
        """The fake model, with answers that every rejection path meets: near-duplicates of its
        own tasks, a task for images, one too short, and (in Alpaca mode) one without an output."""

        def instructions(self, prompt: str, chat: bool) -> str:
            text = super().instructions(prompt, chat)
            if not chat:
                return text
            zh = "下面是人们请" in prompt
            first = int(re.findall(r"^(?:Task |任务)(\d+)[:：]$", prompt, re.M)[-1])
            label = "任务{}：" if zh else "Task {}: "
            copy = text.splitlines()[0].split(label.format(first), 1)[1]
            odd = [copy + ("的另一种" if zh else " again"), "画一张猫的图片。" if zh else "Draw a picture of a cat.",
                   "好" if zh else "Hi"]
            return text + "".join(f"\n{label.format(first + 5 + i)}{item}" for i, item in enumerate(odd))

        def alpaca(self, prompt: str, chat: bool) -> str:
            text = super().alpaca(prompt, chat)
            if not chat:
                return text
            zh = "请想出" in prompt
            blocks = text.split("###\n")[1:]
            n = int(blocks[-1].split(".", 1)[0]) + 1
            copy = blocks[0].splitlines()[0].split("：" if zh else ": ", 1)[1]
            if zh:
                odd = [f"{n}. 指令：{copy}\n输入：无\n输出：重复的答案。",
                       f"{n + 1}. 指令：为这首诗画一幅图片。\n输入：无\n输出：好的。",
                       f"{n + 2}. 指令：写一首关于秋天夜晚的短诗。\n输入：无\n输出："]
            else:
                odd = [f"{n}. Instruction: {copy}\nInput: None\nOutput: A repeated answer.",
                       f"{n + 1}. Instruction: Draw a picture of this poem.\nInput: None\nOutput: Fine.",
                       f"{n + 2}. Instruction: Write a short poem about an autumn night.\nInput: None\nOutput:"]
            return text + "".join(f"\n###\n{block}" for block in odd)

        calls = {"evolve": 0, "compare": 0, "respond": 0}

        def evolve(self, prompt: str, chat: bool) -> str:
            """Evol's eliminations: now and then an empty rewrite."""
            self.calls["evolve"] += 1
            return "" if self.calls["evolve"] % 6 == 0 else super().evolve(prompt, chat)

        def compare(self, prompt: str) -> str:
            """... a rewrite that adds nothing ..."""
            self.calls["compare"] += 1
            return (" 否" if "有新内容：" in prompt[-10:] else " No") if self.calls["compare"] % 4 == 0 else super().compare(prompt)

        def respond(self, prompt: str, chat: bool) -> str:
            """... and an answer that is a refusal."""
            self.calls["respond"] += 1
            if self.calls["respond"] % 5 == 0:
                return "抱歉，我无法回答这个问题。" if "回答：" in prompt[-10:] else "Sorry, I cannot help with that."
            return super().respond(prompt, chat)

        def judge(self, prompt: str, chat: bool) -> str:
            """Scores in the forms chat models write them, and now and then none at all."""
            answer = super().judge(prompt, chat)
            score = int(answer.split("\n")[0].strip().split("：")[-1].split(": ")[-1])
            if score == 2:
                return "这个任务总体还行。" if "评分：" in prompt[-10:] else "I think this task is fine overall."
            return f"**Score:** {score}/5\n**Reason:** Clear enough." if score == 4 else answer

    for name, settings in RUNS.items():
        if sys.argv[1:] and name not in sys.argv[1:]:
            continue
        with tempfile.TemporaryDirectory() as scratch, ScriptedServer(OddModel()) as server:
            run = Path(scratch) / name
            generate(Config(base_url=server.base_url, api_key="sk-test-key", model="stub-model", output=run,
                            requests_per_round=2, concurrency=1, retry_wait=0.01, timeout=5, **settings))
            target = RECORDED / name
            target.mkdir(parents=True, exist_ok=True)
            for file in ("responses.jsonl",) + DERIVED:
                shutil.copy(run / file, target / file)
            stored = json.loads((run / "config.json").read_text())
            stored["settings"].update(seeds="<bundled>", prompts="<bundled>", output="<run>")
            (target / "config.json").write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n")
            print(f"recorded {target}")


if __name__ == "__main__":
    record()
