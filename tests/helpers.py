"""What several test files share: the scripted run's settings, the command line's entry points, the checks every
finished run must pass, and the export/report tests' run. Test files import from here, never from each other."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from fake_model import FakeModel
from openai_stub import Reply
from typer.testing import CliRunner

from selfinstruct import Config, resume
from selfinstruct.cli import app
from selfinstruct.formats.task import Instance
from selfinstruct.text.rouge import RougeIndex
from selfinstruct.text.rules import clean_instances, instruction_rejection

SCRIPT = str(Path(sys.executable).parent / "selfinstruct")
KEY = "sk-distinctive-Fake-Key-7f3a9c"
EXPORT_KEY = "sk-export-Test-Key-51c0de"
USER, PASSWORD = "alice", "s3cret-Pw-9"


def invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


def common(server, out, *more):
    return ["generate", "--base-url", server.base_url, "--api-key", KEY, "--model", "stub-model", "-o", out,
            "--requests-per-round", 2, "--quiet", *more]


def start_cli(server, run_dir, *more, n=40):
    env = dict(os.environ, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=KEY)
    return subprocess.Popen([SCRIPT, "generate", "--lang", "en", "-n", str(n), "-o", str(run_dir), "--model",
                             "stub-model", "--requests-per-round", "2", "--quiet", *more],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def run_config(server, tmp_path, **overrides) -> Config:
    values = dict(base_url=server.base_url, api_key="sk-test-key", model="stub-model", num_instructions=12,
                  output=tmp_path / "run", requests_per_round=2, concurrency=4, retry_wait=0.01, timeout=5)
    values.update(overrides)
    return Config(**values)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_replays_without_requests(run_dir, copy):
    """A copy of the run without its derived files resumes against a closed port (so any request would
    fail) and derives the same bytes: every answer it needs was journaled."""
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("tasks.jsonl", "rejected.jsonl", "summary.json"))
    resume(copy, api_key="sk-test-key", base_url="http://127.0.0.1:9/v1")
    for name in ("tasks.jsonl", "rejected.jsonl", "responses.jsonl"):
        assert (copy / name).read_bytes() == (run_dir / name).read_bytes(), name


def assert_well_formed_run(run_dir, config: Config, seeds_index_texts=()):
    tasks = read_jsonl(run_dir / "tasks.jsonl")
    rejected = read_jsonl(run_dir / "rejected.jsonl") if (run_dir / "rejected.jsonl").exists() else []
    summary = json.loads((run_dir / "summary.json").read_text())
    settings = json.loads((run_dir / "config.json").read_text())
    assert len(tasks) == config.num_instructions == summary["accepted"]
    assert summary["complete"] is True
    assert summary["rejected"] == len(rejected)
    assert sum(summary["rejected_by_reason"].values()) == len(rejected)
    assert summary["requests"] > 0 and summary["tokens_in"] > 0 and summary["tokens_out"] > 0
    assert "api_key" not in settings["settings"]
    ids = [t["id"] for t in tasks]
    assert len(set(ids)) == len(ids)
    lang = settings["settings"]["lang"]
    low, high = settings["settings"]["min_length"], settings["settings"]["max_length"]
    pool = RougeIndex(seeds_index_texts)
    for task in tasks:
        assert set(task) >= {"id", "instruction", "instances", "is_classification", "most_similar", "source"}
        assert task["instances"], task
        assert instruction_rejection(task["instruction"], lang, low, high) is None
        kept, dropped = clean_instances([Instance(**i) for i in task["instances"]])
        assert not dropped
        assert pool.max_similarity(task["instruction"]) <= config.threshold
        pool.add(task["instruction"])
        assert task["source"]["request"].startswith(f"r{task['source']['round']}.")
        for similar in task["most_similar"]:
            assert 0 <= similar["score"] <= config.threshold
    for record in rejected:
        assert record["reason"] and record["stage"] and "instruction" in record
    return tasks, rejected, summary


def processes_writing_to(log: Path) -> list[int]:
    """Live processes whose stdout is the given log: the run's llama.cpp server."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "fd" / "1") == str(log.resolve()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class RejectingModel(FakeModel):
    """The scripted model, with three candidates the filters reject: one per heuristic or ROUGE-L rule."""

    def instruction(self, zh: bool) -> str:
        text = super().instruction(zh)
        if self.counter == 2:
            return "画出这张图片里的猫的轮廓"  # unsupported_modality
        if self.counter == 4:
            return "写诗"  # too_short (6 characters at least)
        if self.counter == 6:
            return self.previous  # too_similar: ROUGE-L 1.0
        self.previous = text
        return text


class ChattyJudge(FakeModel):
    """A judge that answers the way chat models do, and now and then gives no score at all."""

    def judge(self, prompt: str, chat: bool) -> str:
        answer = super().judge(prompt, chat)
        score = int(answer.split("\n")[0].strip().split("：")[-1].split(": ")[-1])
        if score == 2:
            return "这个任务总体还行。" if "评分：" in prompt[-10:] else "I think this task is fine overall."
        return f"**Score:** {score}/5\n**Reason:** Clear enough." if score == 4 else answer


class OddModel(ChattyJudge):
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

    def evolve(self, prompt: str, chat: bool) -> str:
        """Evol's eliminations: now and then an empty rewrite."""
        return "" if _one_in(6, prompt) else super().evolve(prompt, chat)

    def compare(self, prompt: str) -> str:
        """... a rewrite that adds nothing ..."""
        return (" 否" if "有新内容：" in prompt[-10:] else " No") if _one_in(4, prompt) else super().compare(prompt)

    def respond(self, prompt: str, chat: bool) -> str:
        """... and an answer that is a refusal."""
        if _one_in(5, prompt):
            return "抱歉，我无法回答这个问题。" if "回答：" in prompt[-10:] else "Sorry, I cannot help with that."
        return super().respond(prompt, chat)



def _one_in(n: int, prompt: str) -> bool:
    """True for about one prompt in n, always the same ones."""
    return int(hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % n == 0


class KeyedModel:
    """The fake model, answering each prompt as a function of the prompt alone, not of the order requests come
    in: a run gets the same answers whatever their timing, so its tasks must come out the same."""

    def __init__(self, seed: int = 7, model=None):
        self.seed, self.model = seed, model or OddModel

    def __call__(self, request):
        digest = int(hashlib.sha256(request.prompt.encode("utf-8", "surrogatepass")).hexdigest()[:12], 16)
        return self.model(seed=self.seed * 1_000_003 + digest)(request)


class Delayed:
    """Answers after a random delay with a long tail (lognormal, mean ``mean`` seconds, sigma 1), as real
    endpoints do, so that answers come back in another order than they were asked."""

    def __init__(self, model, seed: int, mean: float = 0.02):
        self.model, self.rng, self.mean = model, random.Random(seed), mean
        self.lock = threading.Lock()

    def __call__(self, request):
        answer = self.model(request)
        with self.lock:
            delay = self.mean * math.exp(self.rng.gauss(-0.5, 1.0))
        if isinstance(answer, Reply):
            answer.delay = delay
            return answer
        return Reply(text=answer, delay=delay)
